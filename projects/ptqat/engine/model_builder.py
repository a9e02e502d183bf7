"""``PTQATModel``: build an mmdet3d detector and quantize it in place.

A config turns a float detector into a quantized one with::

    model = dict(_delete_=True, type='PTQATModel', model=_base_.model,
                 quantization=dict(w_bits=4, a_bits=8, ...))

(``model={{_base_.model}}`` works as well; ``_base_.model`` additionally allows
``quantization=dict(_base_.quantization, overrides=...)``.)

The builder returns the *detector itself* (no wrapper): its ``state_dict`` keys are the
float keys plus the quantizer keys (``*.weight_quantizer.step_size``, ``*.initialized``,
``*.ptqat_trainable``), so ``load_from=<float checkpoint>`` loads into it (mmengine's loader
is non-strict and lists the missing quantizer keys) and a PTQAT checkpoint round-trips.

Quantization happens at build time because mmengine builds the optimizer from the model's
parameters before any hook runs; the step sizes are only *initialised* later, by
:class:`~ptqat.engine.PTQATHook`, once the float checkpoint is loaded.
"""
from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, Mapping, Optional, Union

import torch.nn as nn
from mmengine.logging import print_log

from mmdet3d.registry import MODELS
from ptqat.quant import QuantConfig, get_quant_module_class, quantize_model, quantized_layers

__all__ = ['PTQATModel', 'get_quant_config']

#: attribute of the built detector holding its :class:`QuantConfig` (not part of the state_dict)
QUANT_CONFIG_ATTR = '_ptqat_quant_config'


def _plain(obj: Any) -> Any:
    """ConfigDict/ConfigList -> plain dict/list (recursively)."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj) if isinstance(obj, tuple) else [_plain(v) for v in obj]
    return obj


def get_quant_config(model: nn.Module) -> Optional[QuantConfig]:
    """The :class:`QuantConfig` a model was built with by ``PTQATModel`` (None otherwise)."""
    return getattr(model, QUANT_CONFIG_ATTR, None)


def _no_layer_message(detector: nn.Module, qcfg: QuantConfig) -> str:
    """Why ``quantize_model`` quantized nothing: the skip patterns (naming them) or the model."""
    candidates = [n for n, m in detector.named_modules()
                  if m is not detector and get_quant_module_class(m) is not None]
    kind = type(detector).__name__
    if candidates and qcfg.skip:
        return (f'PTQATModel: quantization.skip={list(qcfg.skip)} excludes every one of the '
                f'{len(candidates)} quantizable layers of {kind} (e.g. {candidates[:3]}); '
                'nothing would be quantized. Narrow the skip patterns')
    return (f'PTQATModel: {kind} has no quantizable layer '
            '(Conv1d/Conv2d/Conv3d/ConvTranspose2d/Linear/MultiheadAttention/MatMul)')


def _skip_init_weights(name: str) -> None:
    print_log(f'PTQATModel: init_weights() of {name} skipped: a PTQAT model takes every weight from the float '
              'checkpoint (`load_from`); set init_weights=True in the PTQATModel config to run the float '
              "model's init_cfg (e.g. ImageNet weights) first", logger='current')


@MODELS.register_module()
def PTQATModel(model: Union[Mapping, nn.Module], quantization: Optional[Mapping] = None,  # noqa: N802
               init_weights: bool = False) -> nn.Module:
    """Build ``model`` through ``MODELS.build`` and quantize it (``quantize_model``).

    Args:
        model: the float detector's config (e.g. ``_base_.model``) or a built module.
        quantization: :class:`ptqat.quant.QuantConfig` fields (``w_bits``, ``a_bits``,
            ``w_per_channel``, ``quantize_inputs``, ``skip``, ``overrides``, ``w_init``,
            ``a_init``); None -> the defaults (W4A8, per-channel weights). Unknown keys, bad
            values and skip/override regexes that match no layer raise ValueError.
        init_weights: run the float model's ``init_weights()`` (its ``init_cfg``, e.g.
            downloading ImageNet backbone weights) when the Runner asks for it at the start of
            training. Default False: the Runner calls it *before* loading ``load_from``, which
            overwrites every weight anyway, so it would only cost time and fail offline.
    Returns:
        The quantized detector (the same class as the float one), with uninitialised
        quantizers: calibrate them (``PTQATHook``) or load a PTQAT checkpoint.
    """
    try:
        qcfg = QuantConfig() if quantization is None else QuantConfig.from_dict(_plain(quantization))
    except (ValueError, TypeError) as exc:
        raise ValueError(f'PTQATModel: invalid `quantization` config: {exc}') from exc
    detector = model if isinstance(model, nn.Module) else MODELS.build(model)
    try:
        names = quantize_model(detector, qcfg)
    except ValueError as exc:
        raise ValueError(f'PTQATModel: cannot quantize {type(detector).__name__}: {exc}') from exc
    if not names:
        raise ValueError(_no_layer_message(detector, qcfg))
    object.__setattr__(detector, QUANT_CONFIG_ATTR, qcfg)
    if not isinstance(init_weights, bool):
        raise ValueError(f'PTQATModel: init_weights must be True or False, got {init_weights!r}')
    if not init_weights and hasattr(detector, 'init_weights'):
        object.__setattr__(detector, 'init_weights', partial(_skip_init_weights, type(detector).__name__))
    layers = dict(quantized_layers(detector))
    bits = Counter(f'W{layers[n].w_bits}A{layers[n].a_bits if layers[n].a_bits is not None else "-"}'
                   for n in names)
    mix = ', '.join(f'{k}: {v}' for k, v in sorted(bits.items()))
    print_log(f'PTQATModel: quantized {len(names)} layers of {type(detector).__name__} ({mix}; '
              f'weights {"per channel" if qcfg.w_per_channel else "per tensor"}, '
              f'{len(qcfg.skip)} skip / {len(qcfg.overrides)} override pattern(s)); '
              'step sizes are uninitialised until PTQATHook calibrates them or a PTQAT checkpoint is loaded',
              logger='current')
    return detector
