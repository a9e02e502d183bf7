"""Checkpoint helpers: PTQAT state in the ``state_dict`` and float-checkpoint loading.

Everything PTQAT adds lives in the ``state_dict`` of the quantized model: each quantizer's
``step_size`` and ``initialized`` and each quantized layer's ``ptqat_trainable``. So
``save -> fresh model -> quantize_model(same config) -> load_state_dict`` restores identical
outputs and the selection (``freeze_layers(model, trainable_layers(model))`` re-applies it).
"""
from __future__ import annotations

from typing import List, Mapping, Set

import torch.nn as nn
from torch import Tensor

from .layers import quantized_layers
from .lsq import LSQQuantizer

__all__ = ['load_fp_state_dict', 'quant_state_keys', 'trainable_layers']


def trainable_layers(model: nn.Module) -> List[str]:
    """Names of the quantized layers whose ``ptqat_trainable`` flag is set, network order."""
    return [n for n, m in quantized_layers(model) if bool(m.ptqat_trainable)]


def quant_state_keys(model: nn.Module) -> Set[str]:
    """The ``state_dict`` keys that quantization added (step sizes, init flags, selection)."""
    keys = set()
    # every name of a quantizer: a shared one (share_input_quantizers) has one per reader
    for name, q in model.named_modules(remove_duplicate=False):
        if not isinstance(q, LSQQuantizer):
            continue
        prefix = f'{name}.' if name else ''
        keys.update(prefix + k for k in q.state_dict().keys())
    for name, _ in quantized_layers(model):
        keys.add(f'{name}.ptqat_trainable' if name else 'ptqat_trainable')
    return keys


def load_fp_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> List[str]:
    """Load a float (pre-quantization) checkpoint into a quantized model.

    Only the quantization keys (:func:`quant_state_keys`) may be missing; any other missing
    key and any unexpected key raise ValueError naming them, before anything is loaded.
    Quantizers whose state is missing keep their current (typically uninitialised) state;
    run :func:`calibrate` afterwards. Returns the missing quantization keys.
    """
    expected = set(model.state_dict().keys())
    given = set(state_dict.keys())
    quant_keys = quant_state_keys(model)
    missing = sorted(expected - given - quant_keys)
    unexpected = sorted(given - expected)
    if missing or unexpected:
        raise ValueError(f'float checkpoint does not match the model: missing keys {missing}, '
                         f'unexpected keys {unexpected}')
    model.load_state_dict(state_dict, strict=False)
    return sorted((expected - given) & quant_keys)
