"""Lean autograd functions: the same LSQ forward/gradients, far fewer saved tensors.

Two functions replace the plain ``quantizer -> F.conv2d`` formulation of the quantized
layers (which saves the float input ``x`` in the quantizer *and* the quantized input ``x_q``
in the convolution, and re-quantizes a frozen weight on every step):

* :class:`LeanLSQ` -- one LSQ fake quantizer (``y = round(clamp(x/s, -Qn, Qp)) * s``) with
  the exact LSQ backward. It saves ``x`` and ``s`` only when ``s`` needs a gradient; when only
  ``x`` does, it saves the straight-through mask as a ``bool`` tensor (1 byte per element),
  and nothing when neither does.
* :class:`QuantLayerFunction` -- ``conv/conv_transpose/linear(Q_x(x), Q_w(w), b)`` in one
  node. It saves the float input once (only when the input step size is trained) and
  recomputes ``x_q`` and ``w_q`` in the backward pass; with a frozen input step it saves the
  integer code (int8/uint8) when the weight needs ``x_q`` and the ``bool`` mask when the
  input needs a gradient -- never a float copy of the input. A frozen weight arrives here
  already quantized (cached by :func:`ptqat.quant.frozen.cached_quant_weight`).

All gradients equal those of the plain formulation (same kernels, same formulas; checked
against a frozen copy of the plain implementation in ``tests/quant/reference_impl.py``).
:func:`lean_disabled` switches every layer back to the plain formulation (used by the
exactness tests and the benchmark; ONNX export always uses the plain path).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['LeanLSQ', 'LayerOp', 'QuantLayerFunction', 'lean_disabled', 'lean_enabled', 'lsq_grad_scale']

_LEAN = True


def lean_enabled() -> bool:
    """Whether the lean functions are used (default True; see :func:`lean_disabled`)."""
    return _LEAN


@contextmanager
def lean_disabled() -> Iterator[None]:
    """Within the block every quantized layer uses the plain formulation (for reference)."""
    global _LEAN
    old, _LEAN = _LEAN, False
    try:
        yield
    finally:
        _LEAN = old


def lsq_grad_scale(numel: int, step_numel: int, qp: int) -> float:
    """LSQ gradient scale ``g = 1 / sqrt(N * Qp)``, ``N = numel / step_numel`` (at least 1)."""
    return 1.0 / math.sqrt(max(numel // step_numel, 1) * qp)


# ---------------------------------------------------------------------------- LSQ pieces
def _quantize(x: Tensor, s: Tensor, qn: int, qp: int) -> Tuple[Tensor, Tensor]:
    """``(v, y)``: ``v = x / s`` and ``y = round(clamp(v)) * s`` in ``x.dtype``."""
    v = x / s
    return v, (torch.clamp(v, -qn, qp).round_() * s).to(x.dtype)


def _quantize_code(x: Tensor, s: Tensor, qn: int, qp: int) -> Tuple[Tensor, Tensor, Tensor]:
    """``(v, c, y)``: ``v = x / s``, the float code ``c = round(clamp(v))``, ``y = c * s`` (x.dtype)."""
    v = x / s
    c = torch.clamp(v, -qn, qp).round_()
    return v, c, (c * s).to(x.dtype)


def _inside(v: Tensor, qn: int, qp: int) -> Tensor:
    """Straight-through mask ``-Qn < v < Qp`` (NaN counts as inside, as in the LSQ function)."""
    return ~((v <= -qn) | (v >= qp))


def _lsq_backward(grad: Tensor, v: Tensor, c: Tensor, s: Tensor, qn: int, qp: int, g: float,
                  need_x: bool, need_s: bool, x_dtype: torch.dtype):
    """``(grad_x, grad_s)`` of ``y = c * s`` given ``v = x / s`` and ``c = round(clamp(v))``.

    ``d y / d s`` is ``round(v) - v`` inside the grid and the clamped bound (``-Qn``/``Qp``)
    outside, i.e. ``c - v`` inside and ``c`` outside -- the same numbers as the LSQ function.
    """
    inside = _inside(v, qn, qp)
    grad_x = grad_s = None
    if need_s:
        ds = torch.where(inside, c - v, c)
        gs = grad.to(ds.dtype) * ds
        dims = [d for d in range(gs.dim()) if s.dim() != gs.dim() or s.shape[d] == 1]
        gs = gs.sum(dim=dims, keepdim=True) if dims else gs
        grad_s = (gs * g).reshape(s.shape).to(s.dtype)
    if need_x:
        grad_x = (grad * inside).to(x_dtype)
    return grad_x, grad_s


def _code_dtype(qn: int, qp: int) -> torch.dtype:
    """Smallest integer dtype holding the grid ``[-Qn, Qp]``."""
    if qn <= 128 and qp <= 127:
        return torch.int8
    if qn == 0 and qp <= 255:
        return torch.uint8
    return torch.int16


class LeanLSQ(torch.autograd.Function):
    """``y = round(clamp(x / s, -qn, qp)) * s`` with the LSQ gradients (see :mod:`ptqat.quant.lsq`).

    Args (forward): ``x`` any shape/float dtype; ``s`` positive float32 step broadcastable to
    ``x``; ``qn``, ``qp`` grid bounds; ``g`` the step's gradient scale. Saves ``(x, s)`` only
    if ``s`` needs a gradient, else a ``bool`` mask of ``x``'s shape if ``x`` does, else nothing.
    """

    @staticmethod
    def forward(ctx, x: Tensor, s: Tensor, qn: int, qp: int, g: float) -> Tensor:  # type: ignore[override]
        v, y = _quantize(x, s, qn, qp)
        ctx.qn, ctx.qp, ctx.g, ctx.x_dtype = qn, qp, g, x.dtype
        if ctx.needs_input_grad[1]:
            ctx.save_for_backward(x, s)
        elif ctx.needs_input_grad[0]:
            ctx.save_for_backward(_inside(v, qn, qp))
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        qn, qp = ctx.qn, ctx.qp
        if ctx.needs_input_grad[1]:
            x, s = ctx.saved_tensors
            v = x / s
            c = torch.clamp(v, -qn, qp).round_()
            grad_x, grad_s = _lsq_backward(grad, v, c, s, qn, qp, ctx.g, ctx.needs_input_grad[0], True, ctx.x_dtype)
            return grad_x, grad_s, None, None, None
        (mask,) = ctx.saved_tensors
        grad_x = (grad * mask).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        return grad_x, None, None, None, None


# ---------------------------------------------------------------------------- fused layer
class LayerOp(NamedTuple):
    """Static description of the float op of a quantized layer.

    ``kind``: ``'linear'`` or ``'conv'`` (any conv / transposed conv via
    ``torch.convolution``); for ``'conv'`` the usual integer lists.
    """

    kind: str
    stride: Sequence[int] = ()
    padding: Sequence[int] = ()
    dilation: Sequence[int] = ()
    transposed: bool = False
    output_padding: Sequence[int] = ()
    groups: int = 1


class QSpec(NamedTuple):
    """Grid and gradient scale of one quantizer: ``(qn, qp, g)``."""

    qn: int
    qp: int
    g: float


def _op_forward(op: LayerOp, x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    if op.kind == 'linear':
        out = torch.nn.functional.linear(x, w, b)
        if out._is_view():
            # F.linear folds a >2-D input into a 2-D product and returns a VIEW of it; a view
            # returned by a custom Function may not be modified in place (an in-place ReLU
            # after a frozen Linear raises in backward-enabled mode). `_unsafe_view` (what
            # torch.matmul uses) is the same memory without the view tracking; no copy.
            out = torch.ops.aten._unsafe_view(out, out.shape)
        return out
    return torch.convolution(x, w, b, list(op.stride), list(op.padding), list(op.dilation), op.transposed,
                             list(op.output_padding), op.groups)


def _op_backward(op: LayerOp, grad: Tensor, x_shape: torch.Size, xq: Optional[Tensor], w: Tensor,
                 has_bias: bool, mask: Tuple[bool, bool, bool]):
    """``(grad_x, grad_w, grad_b)`` of ``_op_forward`` (entries not in ``mask`` are None).
    ``xq`` may be None when ``grad_w`` is not needed."""
    if op.kind == 'linear':
        g2 = grad.reshape(-1, grad.shape[-1])  # as autograd's addmm backward of F.linear
        gx = g2.mm(w).reshape(x_shape) if mask[0] else None
        gw = g2.t().mm(xq.reshape(-1, xq.shape[-1])) if mask[1] else None
        gb = g2.sum(0) if (mask[2] and has_bias) else None
        return gx, gw, gb
    x_arg = xq if xq is not None else grad.new_empty(1).expand(x_shape)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad, x_arg, w, [w.shape[1 if op.transposed else 0] * (op.groups if op.transposed else 1)]
        if has_bias else None, list(op.stride), list(op.padding), list(op.dilation), op.transposed,
        list(op.output_padding), op.groups, [mask[0], mask[1], mask[2] and has_bias])
    return gx, gw, gb


class QuantLayerFunction(torch.autograd.Function):
    """``op(Q_x(x), Q_w(w), b)`` in one autograd node with the exact LSQ gradients.

    Args (forward):
        x: layer input (conv: ``(N, C_in, *spatial)``; linear: ``(*, in)``).
        w: weight; raw (``sw`` given) or already quantized/unquantized (``sw`` None).
        b: bias or None.
        sx, sw: broadcast float32 steps of the input / weight quantizer, or None (no
            quantizer, or -- for ``sw`` -- a weight that arrives already quantized).
        op: :class:`LayerOp`; qx, qw: :class:`QSpec` of the two quantizers (or None).
    Returns the layer output, as the plain formulation computes it.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Optional[Tensor], sx: Optional[Tensor], sw: Optional[Tensor],
                op: LayerOp, qx: Optional[QSpec], qw: Optional[QSpec]) -> Tensor:  # type: ignore[override]
        nx, nw, nb, nsx, nsw = ctx.needs_input_grad[:5]
        vx = cx = None
        xq = x
        if sx is not None:
            vx, cx, xq = _quantize_code(x, sx, qx.qn, qx.qp)
        wq = w if sw is None else _quantize(w, sw, qw.qn, qw.qp)[1]
        out = _op_forward(op, xq, wq, b)
        need_gxq = nx or nsx
        need_gwq = nw or nsw
        ctx.op, ctx.qx, ctx.qw = op, qx, qw
        ctx.x_shape, ctx.x_dtype, ctx.has_bias = x.shape, x.dtype, b is not None
        x_saved = code = mask = None
        if sx is None:
            x_saved = x if need_gwq else None
        elif nsx:
            x_saved = x
        else:
            if need_gwq:
                code = cx.to(_code_dtype(qx.qn, qx.qp))
            if nx:
                mask = _inside(vx, qx.qn, qx.qp)
        w_saved = w if (need_gxq or nsw or nw) else None
        ctx.save_for_backward(x_saved, code, mask, w_saved, sx, sw)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        nx, nw, nb, nsx, nsw = ctx.needs_input_grad[:5]
        x, code, mask, w, sx, sw = ctx.saved_tensors
        op, qx, qw = ctx.op, ctx.qx, ctx.qw
        need_gxq, need_gwq = nx or nsx, nw or nsw
        # recompute the quantized operands
        vx = cx = xq = None
        if need_gwq or nsx:
            if sx is None:
                xq = x
            elif x is not None:
                vx, cx, xq = _quantize_code(x, sx, qx.qn, qx.qp)
            else:
                xq = (code.to(torch.float32) * sx).to(ctx.x_dtype)
        vw = cw = wq = None
        if w is not None:
            if sw is None:
                wq = w
            else:
                vw, cw, wq = _quantize_code(w, sw, qw.qn, qw.qp)
        gxq, gwq, gb = _op_backward(op, grad, ctx.x_shape, xq if need_gwq else None, wq, ctx.has_bias,
                                    (need_gxq, need_gwq, nb))
        del xq
        grad_x = grad_w = grad_sx = grad_sw = None
        if sx is None:
            grad_x = gxq if nx else None
        elif nsx:
            grad_x, grad_sx = _lsq_backward(gxq, vx, cx, sx, qx.qn, qx.qp, qx.g, nx, True, ctx.x_dtype)
        elif nx:
            grad_x = (gxq * mask).to(ctx.x_dtype)
        if sw is None:
            grad_w = gwq if nw else None
        elif need_gwq:
            grad_w, grad_sw = _lsq_backward(gwq, vw, cw, sw, qw.qn, qw.qp, qw.g, nw, nsw, w.dtype)
        return grad_x, grad_w, gb if nb else None, grad_sx, grad_sw, None, None, None
