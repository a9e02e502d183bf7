"""Frozen copy of the plain (pre-issue-11) LSQ implementation, the exactness reference.

``reference_mode()`` makes every quantized layer run the plain formulation
(``quantizer(x) -> F.conv*/F.linear/...``, see ``ptqat.quant.layers``' fallback branches)
with *this* copy of the original ``LSQFakeQuantFunction`` (saves ``x`` and ``s``), and
switches the lean BatchNorm/ReLU paths off. Do not edit: the lean functions are checked
against it.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor

from ptqat.quant import LSQQuantizer
from ptqat.quant.fused import lean_disabled


class ReferenceLSQFunction(torch.autograd.Function):
    """``y = round(clamp(x / s, -qn, qp)) * s`` with the LSQ gradients (original code)."""

    @staticmethod
    def forward(ctx, x: Tensor, s: Tensor, qn: int, qp: int, g: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, s)
        ctx.qn, ctx.qp, ctx.g = qn, qp, g
        v = x / s
        return (torch.clamp(v, -qn, qp).round() * s).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, s = ctx.saved_tensors
        qn, qp = ctx.qn, ctx.qp
        v = x / s
        below = v <= -qn
        above = v >= qp
        inside = ~(below | above)
        grad_x = grad_s = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad * inside).to(x.dtype)
        if ctx.needs_input_grad[1]:
            ds = torch.where(inside, v.round() - v, torch.where(below, float(-qn), float(qp)).to(v.dtype))
            gs = grad.to(ds.dtype) * ds
            dims = [d for d in range(gs.dim()) if s.dim() != gs.dim() or s.shape[d] == 1]
            gs = gs.sum(dim=dims, keepdim=True) if dims else gs
            grad_s = (gs * ctx.g).reshape(s.shape).to(s.dtype)
        return grad_x, grad_s, None, None, None


def reference_fake_quant(self: LSQQuantizer, x: Tensor) -> Tensor:
    """The original ``LSQQuantizer.fake_quant``."""
    if not self._is_init:
        raise RuntimeError(f'{self!r} is enabled but its step size is not initialised')
    s = self._broadcast(self.effective_step_size(), x)
    n_per_step = max(x.numel() // s.numel(), 1)
    g = 1.0 / math.sqrt(n_per_step * self.qp)
    return ReferenceLSQFunction.apply(x, s, self.qn, self.qp, g)


@contextmanager
def reference_mode() -> Iterator[None]:
    """Run everything with the plain formulation and the original LSQ function."""
    original = LSQQuantizer.fake_quant
    LSQQuantizer.fake_quant = reference_fake_quant
    try:
        with lean_disabled():
            yield
    finally:
        LSQQuantizer.fake_quant = original
