"""Frozen layers that cost (almost) no activation memory.

* :func:`cached_quant_weight` -- the fake-quantized weight of a layer whose weight and step
  size are both frozen, computed once and reused until the weight or step changes (in-place
  update, ``load_state_dict``, ``.to()``, a new Parameter).
* :func:`lean_layer_forward` -- the quantized Conv/ConvTranspose/Linear layers route their
  forward through :class:`ptqat.quant.fused.QuantLayerFunction` with that cache: a frozen
  layer then keeps only a ``bool`` straight-through mask of its input for the backward pass
  (and nothing at all when its input needs no gradient, e.g. before the first trainable
  layer).
* :func:`make_lean` -- swaps ``nn.BatchNorm1d/2d/3d`` and ``nn.ReLU`` modules to subclasses
  (:class:`LeanBatchNorm2d`, :class:`LeanReLU`, ...; same parameters, buffers and
  ``state_dict`` keys) whose backward keeps no float activation: a BatchNorm in eval mode
  with frozen affine parameters saves only its per-channel scale, a ReLU only a ``bool``
  mask. :func:`ptqat.quant.freeze_layers` calls it.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import fused
from .fused import LayerOp, QSpec, QuantLayerFunction, lsq_grad_scale

__all__ = ['LeanBatchNorm1d', 'LeanBatchNorm2d', 'LeanBatchNorm3d', 'LeanReLU', 'cached_quant_weight',
           'lean_layer_forward', 'make_lean']


def _usable(q) -> bool:
    """An enabled quantizer in its normal fake-quant mode (not observing/exporting)."""
    return q is not None and q.enabled and not q.observing and not q.export_mode and q.is_initialized


def _lean_possible(*quantizers) -> bool:
    """Lean path allowed: switched on, no autocast, no quantizer in observe/export mode."""
    if not fused.lean_enabled() or torch.is_autocast_enabled():
        return False
    for q in quantizers:
        if q is not None and q.enabled and (q.observing or q.export_mode or not q.is_initialized):
            return False
    return True


def cached_quant_weight(q, w: Tensor) -> Tensor:
    """``q``'s fake-quantized ``w`` (no graph), cached on ``q`` while ``w`` and ``q.step_size``
    keep their identity, storage and version counter. Only for frozen ``w`` and step."""
    s = q.step_size
    key = (w, w._version, w.data_ptr(), w.dtype, w.device, s, s._version, s.data_ptr(), q.qn, q.qp, q.eps,
           q.per_channel)
    cache = q.__dict__.get('_wq_cache')
    if cache is not None and len(cache[0]) == len(key) and all(
            a is b if isinstance(a, Tensor) else a == b for a, b in zip(cache[0], key)):
        return cache[1]
    with torch.no_grad():
        wq = fused._quantize(w, q._broadcast(q.effective_step_size(), w), q.qn, q.qp)[1]
    q.__dict__['_wq_cache'] = (key, wq)
    return wq


def frozen_weight(q, w: Tensor) -> bool:
    """True when neither ``w`` nor ``q``'s step size needs a gradient."""
    return not w.requires_grad and not q.step_size.requires_grad


def _step(q, x: Tensor):
    """``(broadcast step, QSpec)`` of an enabled quantizer for tensor ``x``."""
    s = q._broadcast(q.effective_step_size(), x)
    return s, QSpec(q.qn, q.qp, lsq_grad_scale(x.numel(), s.numel(), q.qp))


def lean_layer_forward(layer, x: Tensor, op: LayerOp, weight: Tensor, bias: Optional[Tensor]) -> Optional[Tensor]:
    """The layer output through :class:`QuantLayerFunction`, or None if the plain path must
    be used (lean switched off, autocast, a quantizer observing/exporting/uninitialised, or a
    non-float input). ``layer`` has ``input_quantizer`` and ``weight_quantizer``."""
    qx, qw = layer.input_quantizer, layer.weight_quantizer
    if not x.is_floating_point() or not _lean_possible(qx, qw):
        return None
    sx = specx = sw = specw = None
    if _usable(qx):
        sx, specx = _step(qx, x)
    w = weight
    if _usable(qw):
        if frozen_weight(qw, weight):
            w = cached_quant_weight(qw, weight)
        else:
            sw, specw = _step(qw, weight)
    return QuantLayerFunction.apply(x, w, bias, sx, sw, op, specx, specw)


def conv_op(layer: nn.Module, transposed: bool = False, output_padding=None) -> Optional[LayerOp]:
    """:class:`LayerOp` of a conv layer, or None when it needs the plain path (string padding,
    non-zero padding mode)."""
    if isinstance(layer.padding, str) or getattr(layer, 'padding_mode', 'zeros') != 'zeros':
        return None
    n = len(layer.kernel_size)
    return LayerOp('conv', tuple(layer.stride), tuple(layer.padding), tuple(layer.dilation), transposed,
                   tuple(output_padding) if output_padding is not None else (0,) * n, layer.groups)


LINEAR_OP = LayerOp('linear')


# ---------------------------------------------------------------------------- BN / ReLU
class _FrozenAffine(torch.autograd.Function):
    """Eval-mode batch norm with frozen statistics and affine parameters: forward is
    ``F.batch_norm`` (bit-identical output); backward ``grad * weight / sqrt(var + eps)``
    per channel; saves only that ``(C,)`` scale."""

    @staticmethod
    def forward(ctx, x: Tensor, mean: Tensor, var: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                eps: float) -> Tensor:  # type: ignore[override]
        y = F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)
        scale = torch.rsqrt(var + eps)
        if weight is not None:
            scale = scale * weight
        ctx.save_for_backward(scale)
        ctx.ndim = x.dim()
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (scale,) = ctx.saved_tensors
        shape = [1, -1] + [1] * (ctx.ndim - 2)
        return (grad * scale.reshape(shape)).to(grad.dtype), None, None, None, None, None


class _LeanBNMixin:
    """BatchNorm whose eval-mode forward with frozen parameters saves only a ``(C,)`` scale."""

    def forward(self, input: Tensor) -> Tensor:  # type: ignore[override]
        if (not self.training and self.running_mean is not None and self.running_var is not None
                and input.requires_grad and torch.is_grad_enabled() and fused.lean_enabled()
                and not torch.is_autocast_enabled()
                and not any(p.requires_grad for p in self.parameters(recurse=False))):
            self._check_input_dim(input)
            return _FrozenAffine.apply(input, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
        return super().forward(input)


class LeanBatchNorm1d(_LeanBNMixin, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with the lean frozen eval path (see :class:`_LeanBNMixin`)."""


class LeanBatchNorm2d(_LeanBNMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the lean frozen eval path (see :class:`_LeanBNMixin`)."""


class LeanBatchNorm3d(_LeanBNMixin, nn.BatchNorm3d):
    """``nn.BatchNorm3d`` with the lean frozen eval path (see :class:`_LeanBNMixin`)."""


class _MaskedReLU(torch.autograd.Function):
    """``relu(x)`` saving a ``bool`` mask instead of the float output."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        y = torch.relu(x)
        ctx.save_for_backward(~(y <= 0))  # as threshold_backward: NaN passes
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return torch.where(mask, grad, torch.zeros((), dtype=grad.dtype, device=grad.device))


class _MaskedReLUInplace(torch.autograd.Function):
    """In-place ``relu_(x)`` saving a ``bool`` mask instead of the float output."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        torch.relu_(x)
        ctx.mark_dirty(x)
        ctx.save_for_backward(~(x <= 0))
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return torch.where(mask, grad, torch.zeros((), dtype=grad.dtype, device=grad.device))


class LeanReLU(nn.ReLU):
    """``nn.ReLU`` that keeps a ``bool`` mask (1 byte/element) for its backward instead of the
    float output when its input needs a gradient (in place if ``inplace``, as ``nn.ReLU``)."""

    def forward(self, input: Tensor) -> Tensor:
        if input.requires_grad and torch.is_grad_enabled() and fused.lean_enabled():
            return (_MaskedReLUInplace if self.inplace else _MaskedReLU).apply(input)
        return super().forward(input)


_LEAN_CLASSES: Dict[type, type] = {nn.BatchNorm1d: LeanBatchNorm1d, nn.BatchNorm2d: LeanBatchNorm2d,
                                   nn.BatchNorm3d: LeanBatchNorm3d, nn.ReLU: LeanReLU}


def make_lean(model: nn.Module) -> int:
    """Swap the class of every plain ``nn.BatchNorm{1,2,3}d`` / ``nn.ReLU`` in ``model`` to
    its lean subclass (same attributes and ``state_dict``). Exact subclasses are left alone.
    Returns the number of modules swapped."""
    n = 0
    for m in model.modules():
        lean = _LEAN_CLASSES.get(type(m))
        if lean is not None:
            m.__class__ = lean
            n += 1
    return n
