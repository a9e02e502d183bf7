"""Refuse checkpoints that do not fit the model, before anything is loaded into it.

Two checks, run from ``after_load_checkpoint`` (mmengine calls it with the loaded checkpoint
dict before copying its weights into the model) by :class:`~ptqat.engine.PTQATHook` for
quantized models and by :class:`CheckpointCheckHook` (added by ``tools/train.py`` /
``tools/test.py`` to configs without a PTQATHook) for float ones:

1. **Float weights** (quantized models): every float tensor of the model (parameters and
   buffers, i.e. every ``state_dict`` key except the quantizers' ``step_size`` /
   ``initialized`` and the ``ptqat_trainable`` flags) must be in the checkpoint with the
   model's shape. Otherwise :class:`CheckpointMismatchError` names the missing and the
   mismatched keys (a wrong model's checkpoint, or ``{'foo': tensor}``, would otherwise be
   calibrated and fine-tuned as random weights). ``allow_partial=True`` accepts it.
2. **Quantization settings**: PTQAT checkpoints record the bit widths of every quantized
   layer in ``meta['ptqat']`` (written by ``PTQATHook``). A checkpoint with quantizer state is
   refused when its settings differ from the model's (a W4A8 checkpoint under a W8A8
   config) or when the model is not quantized at all (a PTQAT checkpoint under a float
   config); the error names both. ``accept_quantization_mismatch=True`` converts instead:
   the checkpoint's quantizer state is dropped and only its float weights are loaded (a
   quantized model is then calibrated again by PTQATHook; a float model evaluates the float
   weights).

Both switches live in the config's top-level ``checkpoint_check`` dict (defaults below;
``tools/train.py`` / ``tools/test.py``: ``--allow-partial-checkpoint``,
``--accept-quantization-mismatch``).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Tuple

import torch.nn as nn
from mmengine.hooks import Hook

from mmdet3d.registry import HOOKS
from ptqat.quant import quant_state_keys, quantized_layers
from .pipeline import unwrap_model

__all__ = ['CHECKPOINT_CHECK_DEFAULTS', 'CheckpointCheckHook', 'CheckpointMismatchError', 'META_KEY',
           'check_checkpoint', 'checkpoint_check_options', 'quantization_record']

#: key of the PTQAT record in a checkpoint's ``meta``
META_KEY = 'ptqat'
CHECKPOINT_CHECK_DEFAULTS = dict(allow_partial=False, accept_quantization_mismatch=False)
#: state_dict key endings that only quantized models have
_QUANT_KEY = re.compile(r'(^|\.)(step_size|ptqat_trainable)$|_quantizer\.(initialized|auto_signed)$')
_SHOW = 12


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model (names the file and the keys / settings)."""


def checkpoint_check_options(cfg: Optional[Mapping]) -> Dict[str, bool]:
    """The config's ``checkpoint_check`` dict merged over the defaults (validated)."""
    given = dict((cfg or {}).get('checkpoint_check') or {})
    unknown = sorted(set(given) - set(CHECKPOINT_CHECK_DEFAULTS))
    if unknown:
        raise ValueError(f'checkpoint_check: unknown key(s) {unknown}; allowed: {sorted(CHECKPOINT_CHECK_DEFAULTS)}')
    out = dict(CHECKPOINT_CHECK_DEFAULTS, **given)
    for k, v in out.items():
        if not isinstance(v, bool):
            raise ValueError(f'checkpoint_check.{k} must be True or False, got {v!r}')
    return out


def quantization_record(model: nn.Module) -> Dict[str, Any]:
    """What ``meta['ptqat']`` records of a quantized model: per layer ``'W4A8'``-style bits
    (``A-``: float activations) and weight granularity, plus the QuantConfig when known."""
    from .model_builder import get_quant_config
    layers = {name: _layer_bits(layer) for name, layer in quantized_layers(model)}
    qcfg = get_quant_config(model)
    return dict(layers=layers, quantization=qcfg.to_dict() if qcfg is not None else None)


def _layer_bits(layer: nn.Module) -> str:
    a = layer.a_bits if layer.a_bits is not None else '-'
    return f'W{layer.w_bits}A{a}' + ('' if layer.w_per_channel else ' per-tensor')


def _summary(layers: Mapping[str, str]) -> str:
    counts = Counter(layers.values())
    return ', '.join(f'{k} x{v}' for k, v in sorted(counts.items())) or 'no quantized layer'


def _names(keys: List[str]) -> str:
    return f'{keys[:_SHOW]}' + (f' ... ({len(keys)} in total)' if len(keys) > _SHOW else '')


def _state_dict_of(checkpoint: MutableMapping) -> MutableMapping:
    """The weights of a checkpoint as mmengine's loader takes them (``state_dict`` or the dict)."""
    sd = checkpoint.get('state_dict', checkpoint)
    if not isinstance(sd, MutableMapping):
        raise CheckpointMismatchError(f"the checkpoint's state_dict is a {type(sd).__name__}, not a dict")
    return sd


def _strip_module(key: str) -> str:
    return re.sub(r'^module\.', '', key)  # mmengine's default revise_keys


def _check_float_weights(model: nn.Module, sd: Mapping, filename: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    quant = quant_state_keys(model)
    given = {_strip_module(k): tuple(getattr(v, 'shape', ())) for k, v in sd.items()}
    missing = sorted(k for k in expected if k not in quant and k not in given)
    mismatched = sorted(f'{k}: checkpoint {list(given[k])} vs model {list(expected[k])}'
                        for k in expected if k in given and given[k] != expected[k])
    if missing or mismatched:
        n_float = len(expected) - len(quant & set(expected))
        raise CheckpointMismatchError(
            f'checkpoint {filename} does not fit the model: of its {n_float} float tensors, {len(missing)} are '
            f'missing {_names(missing)} and {len(mismatched)} have another shape {_names(mismatched)}. Is it '
            'the float checkpoint of this model? Set checkpoint_check=dict(allow_partial=True) in the config '
            '(tools: --allow-partial-checkpoint) to load it anyway (the rest keeps its initialisation).')


def _checkpoint_record(checkpoint: Mapping, sd: Mapping) -> Tuple[bool, Optional[Dict[str, str]]]:
    """(has quantizer state, recorded per-layer bits or None)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else {}
    record = meta.get(META_KEY) if isinstance(meta.get(META_KEY), Mapping) else None
    has_quant = any(_QUANT_KEY.search(k) for k in sd)
    return has_quant, (dict(record['layers']) if record and isinstance(record.get('layers'), Mapping) else None)


def _drop_quant_state(sd: MutableMapping) -> int:
    keys = [k for k in sd if _QUANT_KEY.search(k)]
    for k in keys:
        del sd[k]
    return len(keys)


def check_checkpoint(model: nn.Module, checkpoint: MutableMapping, filename: str, *, allow_partial: bool = False,
                     accept_quantization_mismatch: bool = False, logger=None) -> List[str]:
    """Check (and, when converting, modify in place) a loaded checkpoint against ``model``.

    Args:
        model: the (unwrapped) model the checkpoint is about to be loaded into.
        checkpoint: the loaded checkpoint dict (``state_dict``/``meta``, or a bare state dict).
        filename: for the messages.
        allow_partial / accept_quantization_mismatch: see the module docstring.
    Returns:
        Notes for the log (what was accepted or converted).
    Raises:
        CheckpointMismatchError: naming the file and the keys / both quantization settings.
    """
    sd = _state_dict_of(checkpoint)
    notes: List[str] = []
    has_quant, recorded = _checkpoint_record(checkpoint, sd)
    is_quantized = bool(quantized_layers(model))
    if is_quantized:
        ours = quantization_record(model)['layers']
        if has_quant and recorded is not None and recorded != ours:
            differ = sorted(n for n in set(ours) | set(recorded) if ours.get(n) != recorded.get(n))
            detail = (f'checkpoint {filename} was quantized as {_summary(recorded)}, this config quantizes '
                      f'{_summary(ours)}; {len(differ)} layer(s) differ, e.g. '
                      + ', '.join(f'{n}: {recorded.get(n, "not quantized")} vs {ours.get(n, "not quantized")}'
                                  for n in differ[:4]))
            if not accept_quantization_mismatch:
                raise CheckpointMismatchError(
                    detail + '. Use the config it was trained with, or set checkpoint_check=dict('
                    'accept_quantization_mismatch=True) (tools: --accept-quantization-mismatch) to load only its '
                    'float weights and calibrate again.')
            notes.append(f'{detail}; accept_quantization_mismatch: dropped its {_drop_quant_state(sd)} quantizer '
                         'tensors, loading only the float weights (the quantizers are calibrated again)')
        elif has_quant and recorded is None:
            notes.append(f'checkpoint {filename} has quantizer state but records no quantization settings (written '
                         'before they were recorded): its bit widths cannot be checked against this config '
                         f'({_summary(ours)})')
        if allow_partial:
            notes.append('allow_partial: the float weights were not checked against the model')
        else:
            _check_float_weights(model, sd, filename)
    elif has_quant:
        what = _summary(recorded) if recorded is not None else 'quantizer state'
        detail = (f'checkpoint {filename} is a quantized (PTQ/QAT/PTQAT) checkpoint ({what}) but this config\'s '
                  'model is not quantized, so its float weights would be evaluated without quantization')
        if not accept_quantization_mismatch:
            raise CheckpointMismatchError(
                detail + '. Use the quantized config it was trained with, or set checkpoint_check=dict('
                'accept_quantization_mismatch=True) (tools: --accept-quantization-mismatch) to do exactly that.')
        notes.append(f'{detail}; accept_quantization_mismatch: dropped its {_drop_quant_state(sd)} quantizer tensors')
    return notes


def run_checkpoint_check(runner, checkpoint: MutableMapping) -> None:
    """``check_checkpoint`` for a runner's model, file name and ``checkpoint_check`` options."""
    options = checkpoint_check_options(runner.cfg)
    filename = getattr(runner, '_load_from', None) or runner.cfg.get('load_from') or '<checkpoint>'
    notes = check_checkpoint(unwrap_model(runner.model), checkpoint, str(filename), **options)
    for note in notes:
        runner.logger.warning(f'checkpoint check: {note}')


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Runs :func:`check_checkpoint` on every loaded checkpoint (configs without PTQATHook;
    ``tools/train.py`` and ``tools/test.py`` add it). Options: the config's ``checkpoint_check``."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        run_checkpoint_check(runner, checkpoint)
