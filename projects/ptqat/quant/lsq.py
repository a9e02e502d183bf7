"""LSQ fake quantizer (Esser et al., "Learned Step Size Quantization", ICLR 2020).

Forward (``v = x / s``)::

    y = round(clamp(v, -Qn, Qp)) * s

with ``Qn = 2**(b-1), Qp = 2**(b-1) - 1`` for signed and ``Qn = 0, Qp = 2**b - 1`` for
unsigned quantizers. Backward, exactly as in the paper (eq. 3 and the gradient scale of
section 2.2)::

    dy/dx = 1                       if -Qn < v < Qp   else 0          (straight-through)
    dy/ds = (round(v) - v)          if -Qn < v < Qp
            -Qn                     if v <= -Qn
            Qp                      if v >= Qp
    grad(s) is multiplied by g = 1 / sqrt(N * Qp)

where ``N`` is the number of elements one step size covers (``x.numel()`` per tensor,
``x.numel() / C`` per channel). Both are implemented by one :class:`torch.autograd.Function`
(:class:`LSQFakeQuantFunction`) which saves only ``x`` and ``s`` for the backward pass.

The step size is an ``nn.Parameter`` that an optimiser may push anywhere; the forward pass
uses ``s_eff = |s|.clamp_min(eps)`` (computed in float32), so the effective step is always
strictly positive and the output is finite for every finite input, even after a bad step or
after calibrating on an all-zero input. For ``s > eps`` the gradient is exactly the paper's.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn
from torch import Tensor

from .fused import LeanLSQ, lean_enabled

__all__ = [
    'INIT_METHODS', 'LSQFakeQuantFunction', 'LSQQuantizer', 'check_bits', 'quant_range',
    'ReduceFn',
]

#: Step-size initialisation / calibration methods understood by :class:`LSQQuantizer`.
INIT_METHODS = ('lsq', 'minmax', 'percentile', 'mse')

#: ``reduce_fn(tensor, op) -> tensor`` with ``op`` in ``{'sum', 'max'}``: how accumulated
#: statistics are combined across processes (e.g. ``torch.distributed.all_reduce``).
ReduceFn = Callable[[Tensor, str], Tensor]

_MSE_COARSE = 48           # log-spaced clip ratios in [1e-3, 1] ...
_MSE_FINE = 32             # ... refined linearly around the best one
_MSE_MAX_ELEMENTS = 1 << 22  # activations are strided-subsampled to this many elements (mse, percentile)


def check_bits(bits: object, name: str = 'bits') -> int:
    """Return ``bits`` if it is an ``int`` in 2..8, else raise ValueError naming it."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f'{name} must be an integer in 2..8, got {bits!r}')
    return bits


def quant_range(bits: int, signed: bool) -> tuple[int, int]:
    """``(Qn, Qp)``: the integer grid is ``[-Qn, Qp]``."""
    check_bits(bits)
    if signed:
        return 2 ** (bits - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def _check_method(method: object) -> str:
    if method not in INIT_METHODS:
        raise ValueError(f'unknown step-size init method {method!r}; allowed: {", ".join(INIT_METHODS)}')
    return method  # type: ignore[return-value]


class LSQFakeQuantFunction(torch.autograd.Function):
    """``y = round(clamp(x / s, -qn, qp)) * s`` with the LSQ gradients.

    Args (forward):
        x: any shape, any floating dtype.
        s: positive step, broadcastable to ``x`` (shape ``(1,)*x.dim()`` per tensor, or
            ``C`` along the channel axis and 1 elsewhere per channel), float32.
        qn, qp: grid bounds (``Qn``, ``Qp``).
        g: gradient scale for ``s``.
    Returns ``y`` with the dtype and shape of ``x``.
    """

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


class LSQQuantizer(nn.Module):
    """Learned-step-size fake quantizer for weights or activations.

    Args:
        bits: bit width, 2..8.
        signed: signed grid ``[-2^(b-1), 2^(b-1)-1]`` or unsigned ``[0, 2^b-1]``.
        per_channel: one step per slice along ``ch_axis`` (shape ``(C,)``), else one step
            (shape ``(1,)``).
        ch_axis: channel axis of the quantized tensor (0 for Conv/Linear weights, 1 for
            ConvTranspose weights).
        init_method: default method for :meth:`init_step_size` and calibration, one of
            :data:`INIT_METHODS`.
        num_channels: allocate a per-channel step of this size now; otherwise it is
            allocated on the first :meth:`init_step_size` / observation (and re-shaped when
            a checkpoint is loaded, see :meth:`_load_from_state_dict`).
        percentile: percentile of ``|x|`` used by the ``percentile`` method (0..100].
        eps: lower bound of the effective step.

    State (``state_dict``): ``step_size`` (Parameter, ``(C,)`` or ``(1,)``, in units of the
    quantized tensor) and ``initialized`` (bool buffer, shape ``()``).

    Attributes that are *not* state: ``enabled`` (False -> identity), ``observing`` (True ->
    accumulate calibration statistics and return ``x`` unchanged), ``role`` (``'weight'`` or
    ``'activation'``, informational; set by the quantized layers).

    Uninitialised quantizers: a forward pass of an enabled, uninitialised quantizer raises
    RuntimeError (it does *not* silently initialise from the first batch): run
    :func:`ptqat.quant.calibrate` or call :meth:`init_step_size` first, or load a checkpoint.
    """

    def __init__(self, bits: int, signed: bool = True, per_channel: bool = False, ch_axis: int = 0,
                 *, init_method: str = 'lsq', num_channels: Optional[int] = None,
                 percentile: float = 99.99, eps: float = 1e-8) -> None:
        super().__init__()
        self.bits = check_bits(bits)
        self.signed = bool(signed)
        self.per_channel = bool(per_channel)
        self.ch_axis = int(ch_axis)
        self.qn, self.qp = quant_range(self.bits, self.signed)
        self.init_method = _check_method(init_method)
        if not 0.0 < float(percentile) <= 100.0:
            raise ValueError(f'percentile must be in (0, 100], got {percentile!r}')
        self.percentile = float(percentile)
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps!r}')
        self.eps = float(eps)
        if num_channels is not None and (not per_channel or num_channels < 1):
            raise ValueError(f'num_channels={num_channels!r} needs per_channel=True and a value >= 1')
        self.enabled = True
        self.observing = False
        self.role = 'activation'
        self.export_mode = False            # set by ptqat.quant.onnx_export only
        self._export_restore: Optional[tuple] = None
        self._export_scale: Optional[Tensor] = None
        self._stats: Optional[dict] = None
        self._is_init = False               # python mirror of ``initialized`` (no GPU sync)
        self.step_size = nn.Parameter(torch.ones(num_channels or 1))
        self.register_buffer('initialized', torch.tensor(False))

    # ------------------------------------------------------------------ helpers
    @property
    def is_initialized(self) -> bool:
        """True once a step size was set by init/calibration or loaded from a checkpoint."""
        return self._is_init

    def effective_step_size(self) -> Tensor:
        """The step the forward pass uses: ``|step_size|.clamp_min(eps)``, float32, shape ``(C,)``/``(1,)``."""
        return self.step_size.float().abs().clamp_min(self.eps)

    def _axis(self, x: Tensor) -> int:
        ax = self.ch_axis if self.ch_axis >= 0 else self.ch_axis + x.dim()
        if not 0 <= ax < x.dim():
            raise ValueError(f'ch_axis={self.ch_axis} is out of range for a {x.dim()}-d tensor')
        return ax

    def _channels_first(self, x: Tensor) -> Tensor:
        """``(C, M)`` view of ``x`` (per channel) or ``(1, numel)`` (per tensor)."""
        if not self.per_channel:
            return x.reshape(1, -1)
        ax = self._axis(x)
        return x.transpose(0, ax).reshape(x.shape[ax], -1)

    def _broadcast(self, s: Tensor, x: Tensor) -> Tensor:
        if not self.per_channel:
            return s.reshape([1] * x.dim()) if x.dim() else s.reshape(())
        ax = self._axis(x)
        if x.shape[ax] != s.numel():
            raise RuntimeError(f'{self.__class__.__name__}: tensor has {x.shape[ax]} channels on axis {ax} '
                               f'but the per-channel step size has {s.numel()}')
        shape = [1] * x.dim()
        shape[ax] = s.numel()
        return s.reshape(shape)

    def _magnitude(self, x: Tensor) -> Tensor:
        """What the range has to cover: ``|x|`` (signed) or ``relu(x)`` (unsigned)."""
        return x.abs() if self.signed else x.clamp_min(0)

    # ------------------------------------------------------------------ sign
    @property
    def auto_sign(self) -> bool:
        """True when calibration decides the sign (see :meth:`enable_auto_sign`)."""
        return 'auto_signed' in self._buffers

    def set_signed(self, signed: bool) -> None:
        """Use the signed ``[-2^(b-1), 2^(b-1)-1]`` or the unsigned ``[0, 2^b-1]`` grid from now
        on (the step size is not changed; recalibrate after switching by hand)."""
        self.signed = bool(signed)
        self.qn, self.qp = quant_range(self.bits, self.signed)
        if self.auto_sign:
            self.auto_signed.fill_(self.signed)

    def enable_auto_sign(self) -> None:
        """Let calibration choose the sign: unsigned when the calibration data (all batches,
        all processes) has no negative value, e.g. after a ReLU, else signed. The decision
        is the bool buffer ``auto_signed`` (shape ``()``, in the ``state_dict``), restored on
        loading. Until calibrated the quantizer is signed."""
        if not self.auto_sign:
            self.register_buffer('auto_signed', torch.tensor(self.signed, device=self.step_size.device))

    # ------------------------------------------------------------------ forward
    def fake_quant(self, x: Tensor) -> Tensor:
        """Quantize-dequantize ``x`` (shape preserved) regardless of ``enabled``; differentiable."""
        if not self._is_init:
            raise RuntimeError(f'{self!r} is enabled but its step size is not initialised; run '
                               'ptqat.quant.calibrate(model, batches), call init_step_size(x), or load a '
                               'checkpoint that contains the step sizes')
        s = self._broadcast(self.effective_step_size(), x)
        n_per_step = max(x.numel() // s.numel(), 1)
        g = 1.0 / math.sqrt(n_per_step * self.qp)
        fn = LeanLSQ if lean_enabled() else LSQFakeQuantFunction
        return fn.apply(x, s, self.qn, self.qp, g)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` of any shape -> fake-quantized tensor of the same shape and dtype."""
        if self.observing:
            self.observe(x)
            return x
        if not self.enabled:
            return x
        if self.export_mode:
            return self._export_forward(x)
        return self.fake_quant(x)

    # ------------------------------------------------------------------ initialisation
    def _step_from_data(self, x: Tensor, method: str) -> Tensor:
        """Step size(s) ``(C,)``/``(1,)`` that ``method`` derives from one tensor ``x``."""
        x = x.detach().float()
        if method == 'lsq':
            return 2.0 * self._channels_first(x.abs()).mean(dim=1) / math.sqrt(self.qp)
        mag = self._channels_first(self._magnitude(x))
        if method == 'minmax':
            return mag.amax(dim=1) / self.qp
        if method == 'percentile':
            return _kth_percentile(mag, self.percentile) / self.qp
        return self._mse_step(self._channels_first(x), mag.amax(dim=1))

    def _mse_step(self, xc: Tensor, max_mag: Tensor, qn: Optional[int] = None, qp: Optional[int] = None) -> Tensor:
        """Per-channel step minimising the quantisation MSE of ``xc`` ``(C, M)`` -> ``(C,)``.

        Steps are ``r * max_mag / Qp``: a coarse log-spaced grid of clip ratios
        ``r`` in ``[1e-3, 1]`` (48 points, ratio 1.16 apart), then 32 linear points between
        the neighbours of the best coarse ratio. ``qn``/``qp``: the grid (default: this
        quantizer's).
        """
        qn = self.qn if qn is None else qn
        qp = self.qp if qp is None else qp

        def search(ratios: Tensor, best: Tensor, best_err: Tensor) -> tuple:
            for r in ratios.unbind(dim=1):  # ratios (C, K)
                s = (max_mag * r / qp).clamp_min(self.eps)
                sb = s[:, None]
                err = ((xc / sb).clamp(-qn, qp).round() * sb - xc).pow(2).mean(dim=1)
                better = err < best_err
                best_err = torch.where(better, err, best_err)
                best = torch.where(better, r, best)
            return best, best_err

        c = max_mag.numel()
        coarse = torch.logspace(-3, 0, _MSE_COARSE, device=xc.device, dtype=xc.dtype)
        best_r, best_err = search(coarse.expand(c, -1), torch.ones_like(max_mag),
                                  torch.full_like(max_mag, float('inf')))
        factor = 10 ** (3 / (_MSE_COARSE - 1))
        lo, hi = best_r / factor, (best_r * factor).clamp_max(1.0)
        fine = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, _MSE_FINE, device=xc.device,
                                                                 dtype=xc.dtype)[None, :]
        best_r, _ = search(fine, best_r, best_err)
        return (max_mag * best_r / qp).clamp_min(self.eps)

    def _set_step(self, s: Tensor) -> None:
        s = s.detach().float().reshape(-1)
        bad = ~torch.isfinite(s) | (s <= 0)
        s = torch.where(bad, torch.ones_like(s), s.clamp_min(self.eps))  # no information -> 1.0
        with torch.no_grad():
            if s.shape != self.step_size.shape:
                self.step_size = nn.Parameter(s.to(self.step_size.device, self.step_size.dtype).clone(),
                                              requires_grad=self.step_size.requires_grad)
            else:
                self.step_size.copy_(s)
            self.initialized.fill_(True)
        self._is_init = True

    def _check_channels(self, x: Tensor) -> None:
        if self.per_channel and self._is_init:
            c = x.shape[self._axis(x)]
            if c != self.step_size.numel():
                raise RuntimeError(f'{self.__class__.__name__}: {c} channels on axis {self.ch_axis}, but the '
                                   f'initialised step size has {self.step_size.numel()}')

    def init_step_size(self, x: Tensor, method: Optional[str] = None) -> None:
        """Set the step size from one tensor ``x`` (any shape; per channel along ``ch_axis``).

        Methods (``m = |x|`` for signed, ``relu(x)`` for unsigned; per channel when per_channel):

        * ``lsq``: ``2 * mean(|x|) / sqrt(Qp)`` (the LSQ paper's initialisation).
        * ``minmax``: ``max(m) / Qp`` -- the largest magnitude lands exactly on ``Qp``
          (symmetric; the extra negative level ``-Qn = -(Qp+1)`` is unused).
        * ``percentile``: ``percentile(m, self.percentile) / Qp`` (default 99.99th).
        * ``mse``: the step ``r * max(m) / Qp`` minimising ``mean((Q(x) - x)^2)``, ``r`` found
          by a log-spaced grid over ``[1e-3, 1]`` refined linearly (80 evaluations).

        A non-finite or non-positive result (e.g. an all-zero input) sets the step to 1.0.
        With :meth:`enable_auto_sign` the sign is chosen from ``x`` first.
        Raises ValueError for an unknown method.
        """
        method = _check_method(self.init_method if method is None else method)
        self._check_channels(x)
        if self.auto_sign:
            self.set_signed(bool((x < 0).any()))
        self._set_step(self._step_from_data(x, method))

    # ------------------------------------------------------------------ calibration
    def start_observation(self, method: Optional[str] = None) -> None:
        """Enter observe mode: forward returns ``x`` unchanged and accumulates statistics.

        Accumulated per method (per channel when per_channel), all reducible across processes:

        * ``lsq``: running ``sum |x|`` and element count (``'sum'``) -> exact global mean.
        * ``minmax``: running ``max m`` (``'max'``) -> exact global max.
        * ``percentile``: sum of per-batch percentiles and batch count (``'sum'``) -> the mean
          of per-batch percentiles (large batches are strided-subsampled to 4M elements first).
        * ``mse``: sum of per-batch MSE-optimal steps and batch count (``'sum'``) -> the mean
          per-batch optimum (large batches are strided-subsampled to 4M elements first).

        With :meth:`enable_auto_sign` also ``max(-x)`` (``'max'``, after the others) decides
        the sign; statistics are gathered for the signed grid (for ``mse`` also for the
        unsigned one, ``'sum'``, reduced last), which equal the unsigned ones when no value
        is negative.
        """
        method = _check_method(self.init_method if method is None else method)
        self.observing = True
        self._stats = {'method': method, 'value': None, 'count': None}
        if self.auto_sign:
            self.set_signed(True)
        if not self.per_channel or self.step_size.numel() > 1 or self._is_init:
            self._alloc_stats(self.step_size.numel(), self.step_size.device)

    def observe(self, x: Tensor) -> None:
        """Accumulate calibration statistics of ``x`` (called by forward in observe mode)."""
        if self._stats is None:
            raise RuntimeError('observe() called outside start_observation()/finish_observation()')
        if x.numel() == 0:
            return
        with torch.no_grad():
            x = x.detach().float()
            method = self._stats['method']
            if self._stats['value'] is None:  # lazily sized per-channel statistics
                self._alloc_stats(x.shape[self._axis(x)], x.device)
            value, count = self._stats['value'], self._stats['count']
            if self.per_channel and x.shape[self._axis(x)] != value.numel():
                raise RuntimeError(f'observed {x.shape[self._axis(x)]} channels, expected {value.numel()}')
            value = value.to(x.device)
            count = count.to(x.device)
            if method == 'lsq':
                xc = self._channels_first(x.abs())
                value += xc.sum(dim=1, dtype=torch.float64)
                count += xc.shape[1]
            elif method == 'minmax':
                value.copy_(torch.maximum(value, self._channels_first(self._magnitude(x)).amax(dim=1).double()))
                count += 1
            elif method == 'percentile':
                xc = _subsample(self._channels_first(x))
                value += _kth_percentile(self._magnitude(xc), self.percentile).double()
                count += 1
            else:  # mse
                xc = _subsample(self._channels_first(x))
                mag = xc.abs() if self.signed else xc.clamp_min(0)
                value += self._mse_step(xc, mag.amax(dim=1)).double()
                count += 1
                if self.auto_sign:
                    unsigned = self._stats['value_unsigned']
                    unsigned += self._mse_step(xc, xc.clamp_min(0).amax(dim=1), *quant_range(self.bits, False)
                                               ).double().to(unsigned.device)
            if self.auto_sign:
                neg = self._stats['neg_max']
                neg.copy_(torch.maximum(neg, (-x.amin()).double().reshape(1).to(neg.device)))
            self._stats['value'], self._stats['count'] = value, count

    def _alloc_stats(self, n: int, device) -> None:
        """Zeroed float64 statistics for ``n`` step sizes on ``device``."""
        self._stats['value'] = torch.zeros(n, dtype=torch.float64, device=device)
        self._stats['count'] = torch.zeros(1, dtype=torch.float64, device=device)
        if self.auto_sign:
            self._stats['neg_max'] = torch.full((1,), float('-inf'), dtype=torch.float64, device=device)
            if self._stats['method'] == 'mse':
                self._stats['value_unsigned'] = torch.zeros(n, dtype=torch.float64, device=device)

    def finish_observation(self, reduce_fn: Optional[ReduceFn] = None) -> bool:
        """Leave observe mode and set the step size from the accumulated statistics.

        ``reduce_fn(tensor, op)`` (op ``'sum'`` or ``'max'``), if given, is applied to every
        statistic tensor first (e.g. an all-reduce across DDP ranks); it must return the
        reduced tensor. Returns False (and leaves the quantizer untouched) if nothing was
        observed (by any process).
        """
        stats, self._stats, self.observing = self._stats, None, False
        if stats is None or stats['value'] is None:
            return False
        method, value, count = stats['method'], stats['value'], stats['count']
        neg, unsigned = stats.get('neg_max'), stats.get('value_unsigned')
        if reduce_fn is not None:
            value = reduce_fn(value, 'max' if method == 'minmax' else 'sum')
            count = reduce_fn(count, 'sum')
            neg = None if neg is None else reduce_fn(neg, 'max')
            unsigned = None if unsigned is None else reduce_fn(unsigned, 'sum')
        n = float(count.reshape(-1)[0])
        if n <= 0:
            return False
        if neg is not None:
            self.set_signed(bool(neg.reshape(-1)[0] > 0))
            if unsigned is not None and not self.signed:
                value = unsigned
        if method == 'lsq':
            step = 2.0 * (value / n) / math.sqrt(self.qp)
        elif method == 'minmax':
            step = value / self.qp
        elif method == 'percentile':
            step = (value / n) / self.qp
        else:
            step = value / n
        self._set_step(step)
        return True

    # ------------------------------------------------------------------ export
    def prepare_export(self, weight: Optional[Tensor] = None) -> None:
        """Enter export mode (used by :func:`ptqat.quant.export_onnx`).

        Freezes the effective step as a constant. For a weight quantizer, ``weight`` (the
        layer's Parameter) temporarily holds its fake-quantized values (grid values, any bit
        width) until :meth:`finish_export`, so the traced graph reads
        ``initializer -> QuantizeLinear -> DequantizeLinear`` with no step-size arithmetic.
        """
        if not self._is_init:
            raise RuntimeError(f'cannot export {self!r}: step size not initialised')
        with torch.no_grad():
            self._export_scale = self.effective_step_size().detach().clone()
            if weight is not None:
                baked = self.fake_quant(weight).detach()
                self._export_restore = (weight, weight.data)
                weight.data = baked
        self.__dict__.pop('_export_memo', None)
        self.export_mode = True

    def finish_export(self) -> None:
        """Leave export mode: restore a baked weight and drop the export constants."""
        if self._export_restore is not None:
            weight, data = self._export_restore
            weight.data = data
        self.export_mode = False
        self._export_restore = None
        self._export_scale = None
        self.__dict__.pop('_export_memo', None)

    def export_qrange(self) -> tuple[int, int]:
        """``(quant_min, quant_max)`` of the exported Q/DQ pair: ``(0, 255)`` (UINT8) for an
        unsigned 8-bit grid, else ``(-128, 127)`` (INT8, which holds every other grid)."""
        return (0, 255) if not self.signed and self.bits == 8 else (-128, 127)

    def _export_forward(self, x: Tensor) -> Tensor:
        """Export path: (weights: already baked onto the grid) -> Clip to the grid range when the
        grid is narrower than the exported integer type -> QuantizeLinear/DequantizeLinear
        (zero point 0; INT8, or UINT8 for an unsigned 8-bit grid)."""
        s = self._export_scale
        if s is None:
            raise RuntimeError('export_mode is set but prepare_export() was not called')
        # a shared input quantizer (QuantConfig.share_input_quantizers) is called once per reader
        # on the same tensor: reuse the last output, so the graph has one Q/DQ pair per tensor
        memo = self.__dict__.get('_export_memo')
        if memo is not None and memo[0] is x and memo[1] == x._version:
            return memo[2]
        out = self._export_qdq(x, s)
        self.__dict__['_export_memo'] = (x, x._version, out)
        return out

    def _export_qdq(self, x: Tensor, s: Tensor) -> Tensor:
        lo, hi = self.export_qrange()
        # activations on a grid narrower than the integer type: clip first, then Q/DQ is exact
        if self._export_restore is None and (-self.qn, self.qp) != (lo, hi):
            if self.per_channel:
                sb = self._broadcast(s, x)
                x = torch.max(torch.min(x, (self.qp * sb).to(x.dtype)), (-self.qn * sb).to(x.dtype))
            else:
                x = torch.clamp(x, -self.qn * float(s), self.qp * float(s))
        if self.per_channel:
            zp = torch.zeros(s.numel(), dtype=torch.int32, device=s.device)
            return torch.fake_quantize_per_channel_affine(x, s, zp, self._axis(x), lo, hi)
        zp = torch.zeros((), dtype=torch.int32, device=s.device)
        return torch.fake_quantize_per_tensor_affine(x, s.reshape(()), zp, lo, hi)

    # ------------------------------------------------------------------ state dict
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        key = prefix + 'step_size'
        if key in state_dict and state_dict[key].shape != self.step_size.shape:
            self.step_size = nn.Parameter(
                torch.empty(state_dict[key].shape, dtype=self.step_size.dtype, device=self.step_size.device),
                requires_grad=self.step_size.requires_grad)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._is_init = bool(self.initialized)
        if self.auto_sign:
            self.set_signed(bool(self.auto_signed))

    def extra_repr(self) -> str:
        axis = f', ch_axis={self.ch_axis}' if self.per_channel else ''
        sign = f"{self.signed} (auto)" if self.auto_sign else f'{self.signed}'
        return (f'bits={self.bits}, signed={sign}, per_channel={self.per_channel}{axis}, '
                f'enabled={self.enabled}, init={self.init_method!r}, role={self.role!r}')


def _subsample(xc: Tensor) -> Tensor:
    """Every ``stride``-th column of ``xc`` ``(C, M)`` so that at most about
    ``_MSE_MAX_ELEMENTS`` elements remain (``xc`` itself, a view, when it is small enough)."""
    stride = max(1, math.ceil(xc.numel() / _MSE_MAX_ELEMENTS))
    return xc if stride == 1 else xc[:, ::stride]


def _kth_percentile(mag: Tensor, p: float) -> Tensor:
    """Per-row ``p``-th percentile (nearest rank) of ``mag`` ``(C, M)`` -> ``(C,)``."""
    m = mag.shape[1]
    k = min(max(int(math.ceil(p / 100.0 * m)), 1), m)
    return mag.kthvalue(k, dim=1).values
