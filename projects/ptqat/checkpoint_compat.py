"""Loading mmengine checkpoints with torch >= 2.6 (``torch.load`` defaults to ``weights_only``).

mmengine 0.10.7 calls ``torch.load(filename)`` without ``weights_only``. Since torch 2.6 that
means the weights-only unpickler, which refuses mmengine's own checkpoints: their ``meta``
holds the message hub (``HistoryBuffer`` objects whose statistics methods pickle through
``getattr``) and numpy scalars. Neither training resume nor ``load_from`` of a checkpoint
written by the Runner works then.

This module re-registers mmengine's local-file checkpoint loader, once:

1. try ``weights_only=True`` (plain weight files, e.g. official or converted checkpoints, load
   this way with torch's protection intact);
2. if that fails, list the file's globals (``torch.serialization.get_unsafe_globals_in_checkpoint``)
   and, only if every one of them is something mmengine itself writes (``MMENGINE_GLOBALS``),
   load with ``weights_only=False``;
3. otherwise raise, naming the unexpected globals, so that an untrusted pickle never executes.

Imported by ``ptqat.plugin`` (configs) and the project's tools.
"""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

MMENGINE_GLOBALS = frozenset({
    'builtins.getattr', 'numpy.dtype', 'numpy.ndarray', 'numpy.core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar', 'mmengine.logging.history_buffer.HistoryBuffer',
    'collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage',
}) | {f'numpy.dtypes.{n}' for n in ('Float64DType', 'Float32DType', 'Int64DType', 'Int32DType',
                                    'BoolDType', 'UInt8DType', 'Float16DType')}


def load_local_checkpoint(filename: str, map_location=None):
    """Load a local checkpoint file (see the module docstring for the safety rule)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as first_error:  # noqa: BLE001 - inspected below
        try:
            found = set(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
        except Exception:  # not a zip checkpoint: nothing more can be checked safely
            raise first_error
        unexpected = sorted(found - MMENGINE_GLOBALS)
        if unexpected:
            raise RuntimeError(
                f'refusing to unpickle {filename!r}: it holds globals that mmengine checkpoints '
                f'do not, {unexpected}. Load it yourself with torch.load(weights_only=False) '
                'only if you trust its source.') from first_error
        return torch.load(filename, map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
