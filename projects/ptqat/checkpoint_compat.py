"""Loading mmengine checkpoints safely with torch >= 2.6: never by running code from the file.

mmengine 0.10.7 calls ``torch.load(filename)`` without ``weights_only``. Since torch 2.6 that
means the weights-only unpickler, which refuses mmengine's own checkpoints: their
``message_hub`` holds ``HistoryBuffer`` objects (numpy arrays and scalars inside) whose
statistics methods pickle as ``getattr(HistoryBuffer, 'mean')`` and so on. Neither training
resume nor ``load_from`` of a checkpoint written by the Runner works then.

This module re-registers mmengine's local-file checkpoint loader (once, on import) with a
loader that **always** uses ``torch.load(weights_only=True)``, extended by exactly the globals
that mmengine writes (:func:`mmengine_safe_globals`):

* ``mmengine.logging.history_buffer.HistoryBuffer``;
* numpy arrays, dtypes and scalars (``numpy.ndarray``, ``numpy.dtype``, the ``numpy.dtypes``
  classes, ``numpy.core.multiarray._reconstruct`` / ``scalar``, numpy 1 and 2 spellings);
* ``builtins.getattr`` *replaced by* :func:`history_buffer_getattr`, which only returns a
  statistics method of ``HistoryBuffer`` (``mean``, ``min``, ...) and refuses everything
  else (``getattr(f, '__globals__')`` and the like, which is how a pickle reaches ``os``).

Anything else (a pickled ``os.system``, a custom class) is refused by torch's unpickler; the
error names the file and the global. Unreadable files (empty, text, a truncated or non-torch
file, a pickle that is not a dict) raise :class:`CheckpointError` naming the file and what is
wrong with it.

Imported by ``ptqat.plugin`` (configs) and the project's tools.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Iterator, List, Tuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['CheckpointError', 'history_buffer_getattr', 'load_local_checkpoint', 'mmengine_safe_globals',
           'mmengine_safe_globals_context']


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded; the message names the file."""


def _statistics_names() -> List[str]:
    return sorted(set(HistoryBuffer._statistics_methods) | {'min', 'max', 'current', 'mean'})


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a checkpoint may call: ``HistoryBuffer.<statistics method>``.

    mmengine pickles ``HistoryBuffer._statistics_methods`` (e.g. ``{'mean': HistoryBuffer.mean}``)
    and pickle protocol 2 writes each method as ``getattr(HistoryBuffer, 'mean')``.

    Raises:
        pickle.UnpicklingError: for any other object or attribute name.
    """
    if obj is HistoryBuffer and isinstance(name, str) and name in _statistics_names() \
            and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({getattr(obj, "__qualname__", type(obj).__name__)}, {name!r}): a checkpoint may only '
        f'use getattr for the statistics methods of mmengine HistoryBuffer ({", ".join(_statistics_names())})')


def _numpy_globals() -> List[Tuple[Any, str]]:
    """numpy objects mmengine checkpoints contain (arrays/scalars of the message hub), under
    every module path numpy 1.x and 2.x pickle them."""
    try:
        from numpy._core import multiarray  # numpy >= 2 (numpy 1.26 maps it to numpy.core)
    except ImportError:  # pragma: no cover - numpy < 1.26
        from numpy.core import multiarray
    out: List[Tuple[Any, str]] = [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out += [(multiarray._reconstruct, f'{mod}._reconstruct'), (multiarray.scalar, f'{mod}.scalar')]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                out.append((cls, f'numpy.dtypes.{name}'))
    return out


def mmengine_safe_globals() -> List[Tuple[Any, str]]:
    """``(object, 'module.name')`` pairs for ``torch.serialization.safe_globals``: exactly what
    mmengine 0.10 writes into a Runner checkpoint beyond tensors and plain containers."""
    return [(HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
            (history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()


@contextmanager
def mmengine_safe_globals_context() -> Iterator[None]:
    """``torch.serialization.safe_globals(mmengine_safe_globals())`` (only while loading)."""
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        yield


def _describe_bad_file(filename: str) -> str:
    """What the start of a file that torch cannot read looks like (for the error message)."""
    with open(filename, 'rb') as f:
        head = f.read(64)
    if head.startswith(b'PK'):
        return 'a zip archive that torch.load cannot read (a truncated or corrupted checkpoint?)'
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return 'a binary file that is not a PyTorch checkpoint'
    return f'a text file, not a PyTorch checkpoint (it starts with {text[:40]!r})'


#: words of torch's weights-only errors that mean "this pickle calls or builds something not allowed"
_CODE_WORDS = ('GLOBAL', 'global', 'getattr', 'reduce', 'new object')


def _unpickler_detail(exc: Exception) -> str:
    """The specific reason of a weights-only unpickling error (the last paragraph of torch's
    long message), on one line."""
    paragraphs = [p.strip() for p in str(exc).split('\n\n') if p.strip()]
    text = paragraphs[-1] if paragraphs else repr(exc)
    if text.startswith('Check the documentation') and len(paragraphs) > 1:
        text = paragraphs[-2]
    return ' '.join(text.split())


def load_local_checkpoint(filename: str, map_location=None) -> Mapping:
    """Load a local checkpoint file with the weights-only unpickler (see the module docstring).

    Returns:
        The checkpoint dict (``{'state_dict': ..., 'meta': ...}`` or a bare state dict).
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is empty, not a torch checkpoint, holds something other than
            a dict, or needs a global that mmengine checkpoints do not contain (the message
            names the file and the global; nothing from the file was executed).
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    if os.path.getsize(filename) == 0:
        raise CheckpointError(f'checkpoint {filename} is an empty file (0 bytes): an interrupted download or save?')
    allowed = mmengine_safe_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(exc)
        if not any(word in detail for word in _CODE_WORDS):  # e.g. 'Unsupported operand 255': not a pickle
            raise CheckpointError(f'cannot read checkpoint {filename}: {_describe_bad_file(filename)} '
                                  f'({detail})') from exc
        raise CheckpointError(
            f'refusing to load checkpoint {filename}: it needs something mmengine checkpoints never contain and '
            f'could run code when unpickled: {detail}. Nothing was executed. Load it yourself with '
            'torch.load(weights_only=False) only if you trust its source.') from exc
    except Exception as exc:  # noqa: BLE001 - any other failure to parse: name the file and the cause
        raise CheckpointError(f'cannot read checkpoint {filename}: {_describe_bad_file(filename)} '
                              f'({type(exc).__name__}: {exc})') from exc
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'checkpoint {filename} holds a {type(checkpoint).__name__}, not a dict: expected '
                              "{'state_dict': {name: tensor}, 'meta': {...}} or a {name: tensor} state dict")
    return checkpoint


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
