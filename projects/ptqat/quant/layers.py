"""Quantized drop-in replacements of torch layers.

Every quantized layer subclasses the float layer it replaces and keeps its parameter and
buffer names (``weight``, ``bias``, ``in_proj_weight``, ...), so float checkpoints load into
it. It adds LSQ fake quantizers as child modules:

* ``weight_quantizer``: per-output-channel (axis 0 for Conv/Linear, axis 1 for
  ConvTranspose whose weight is ``(in, out/groups, kH, kW)``) or per-tensor;
* ``input_quantizer``: per-tensor, signed, on the layer input; ``None`` when ``a_bits`` is
  None (weight-only quantization);
* a bool buffer ``ptqat_trainable`` (shape ``()``) recording the PTQAT selection.

``from_float(module, w_bits, a_bits, w_per_channel, *, w_init, a_init)`` converts an existing
float layer, **sharing** its Parameter objects (and buffers, hooks and attributes). Layers can
also be constructed directly, e.g. ``QuantConv2d(16, 32, 3, w_bits=4, a_bits=8)``.
"""
from __future__ import annotations

import copy
import math
from typing import Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import frozen as _lean
from .lsq import LSQQuantizer, check_bits

__all__ = [
    'Add', 'MatMul', 'QuantAdd', 'QuantConv1d', 'QuantConv2d', 'QuantConv3d', 'QuantConvTranspose2d', 'QuantLinear',
    'QuantMatMul', 'QuantModule', 'QuantMultiheadAttention', 'iter_quantizers', 'quantized_layers',
]

DEFAULT_W_INIT = 'mse'
DEFAULT_A_INIT = 'percentile'


def _clone_module_state(src: nn.Module, dst: nn.Module) -> None:
    """Give ``dst`` (fresh, uninitialised) the attributes of ``src``: the same Parameter and
    buffer objects in new containers, so later edits of ``dst``'s children/parameters do not
    leak into ``src``."""
    for key, value in src.__dict__.items():
        dst.__dict__[key] = copy.copy(value) if isinstance(value, (dict, set)) else value


class QuantModule:
    """Mixin shared by all quantized layers (place it first in the bases).

    Subclasses set ``_float_cls`` (the torch layer they replace), ``_w_axis`` (output-channel
    axis of the weight) and ``_weight_names`` (quantized weights -> quantizer attribute), and
    implement ``forward``.
    """

    _float_cls: type = nn.Module
    _w_axis: int = 0
    #: ``(weight attribute, quantizer attribute)`` pairs quantized by this layer.
    _weight_names: Tuple[Tuple[str, str], ...] = (('weight', 'weight_quantizer'),)
    #: activation quantizer attributes (all fed with layer inputs).
    _act_names: Tuple[str, ...] = ('input_quantizer',)

    def __init__(self, *args, w_bits: int = 4, a_bits: Optional[int] = 8, w_per_channel: bool = True,
                 w_init: str = DEFAULT_W_INIT, a_init: str = DEFAULT_A_INIT, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._ptqat_setup(w_bits, a_bits, w_per_channel, w_init, a_init)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_float(cls, module: nn.Module, w_bits: int, a_bits: Optional[int], w_per_channel: bool = True,
                   *, w_init: str = DEFAULT_W_INIT, a_init: str = DEFAULT_A_INIT):
        """Quantized copy of ``module`` sharing its parameters, buffers and hooks.

        Args:
            module: an instance of ``cls._float_cls`` (subclasses accepted).
            w_bits: weight bits, 2..8.
            a_bits: input-activation bits, 2..8, or None for weight-only quantization.
            w_per_channel: per-output-channel (True) or per-tensor weight step sizes.
            w_init, a_init: step-size init methods of the weight / activation quantizers.
        """
        if not isinstance(module, cls._float_cls):
            raise TypeError(f'{cls.__name__}.from_float expects a {cls._float_cls.__name__}, '
                            f'got {type(module).__name__}')
        if isinstance(module, QuantModule):
            raise TypeError(f'{type(module).__name__} is already quantized')
        q = cls.__new__(cls)
        _clone_module_state(module, q)
        q._ptqat_setup(w_bits, a_bits, w_per_channel, w_init, a_init)
        return q

    def _ptqat_setup(self, w_bits: int, a_bits: Optional[int], w_per_channel: bool, w_init: str,
                     a_init: str) -> None:
        check_bits(w_bits, 'w_bits')
        if a_bits is not None:
            check_bits(a_bits, 'a_bits')
        self.w_bits, self.a_bits, self.w_per_channel = w_bits, a_bits, bool(w_per_channel)
        device = None
        for wname, qname in self._weight_names:
            w = getattr(self, wname, None)
            if w is None:
                self.register_module(qname, None)
                continue
            device = w.device
            q = LSQQuantizer(w_bits, signed=True, per_channel=self.w_per_channel, ch_axis=self._w_axis,
                             init_method=w_init,
                             num_channels=w.shape[self._w_axis] if self.w_per_channel else None)
            q.role = 'weight'
            self.register_module(qname, q.to(device))
        if 'weight_quantizer' not in self._modules:  # uniform attribute, e.g. QuantMatMul
            self.register_module('weight_quantizer', None)
        for qname in self._act_names:
            if a_bits is None:
                self.register_module(qname, None)
            else:
                q = LSQQuantizer(a_bits, signed=True, per_channel=False, init_method=a_init)
                self.register_module(qname, q.to(device) if device is not None else q)
        self.register_buffer('ptqat_trainable', torch.tensor(False, device=device))

    # ---------------------------------------------------------------- introspection
    def own_quantizers(self) -> List[LSQQuantizer]:
        """The LSQ quantizers that are direct children of this layer (not of nested layers)."""
        return [m for m in self.children() if isinstance(m, LSQQuantizer)]  # type: ignore[attr-defined]

    def weight_quantizer_pairs(self) -> List[Tuple[LSQQuantizer, Tensor]]:
        """``(quantizer, weight tensor)`` for each quantized weight of this layer."""
        pairs = []
        for wname, qname in self._weight_names:
            q, w = getattr(self, qname, None), getattr(self, wname, None)
            if q is not None and w is not None:
                pairs.append((q, w))
        return pairs

    def activation_quantizers(self) -> List[LSQQuantizer]:
        """Own quantizers fed with runtime tensors (calibrated from observed inputs)."""
        weights = {id(q) for q, _ in self.weight_quantizer_pairs()}
        return [q for q in self.own_quantizers() if id(q) not in weights]

    def own_parameters(self) -> List[nn.Parameter]:
        """This layer's trainable tensors: its direct parameters and its own step sizes
        (nested quantized layers, e.g. ``QuantMultiheadAttention.out_proj``, own theirs)."""
        params = list(self.parameters(recurse=False))  # type: ignore[attr-defined]
        for q in self.own_quantizers():
            params.extend(q.parameters())
        return params

    def init_weight_quantizers(self) -> None:
        """Initialise every weight quantizer's step size from its weight (``init_method``)."""
        with torch.no_grad():
            for q, w in self.weight_quantizer_pairs():
                q.init_step_size(w)

    @staticmethod
    def _q(quantizer: Optional[LSQQuantizer], x: Tensor) -> Tensor:
        return x if quantizer is None else quantizer(x)

    def quant_weight(self) -> Tensor:
        """The (fake-)quantized ``weight``."""
        return self._q(self.weight_quantizer, self.weight)  # type: ignore[attr-defined]

    def quant_input(self, x: Tensor) -> Tensor:
        """The (fake-)quantized layer input."""
        return self._q(self.input_quantizer, x)  # type: ignore[attr-defined]


class _QuantConvNd(QuantModule):
    """The forward of the quantized ``nn.Conv1d/2d/3d``: the lean fused path when it applies
    (:mod:`ptqat.quant.frozen`), else ``conv(Q_x(x), Q_w(w), b)``."""

    def forward(self, input: Tensor) -> Tensor:
        op = _lean.conv_op(self)
        out = None if op is None else _lean.lean_layer_forward(self, input, op, self.weight, self.bias)
        if out is not None:
            return out
        return self._conv_forward(self.quant_input(input), self.quant_weight(), self.bias)  # type: ignore[attr-defined]


class QuantConv2d(_QuantConvNd, nn.Conv2d):
    """``nn.Conv2d`` with fake-quantized weight (axis 0) and input. Input ``(N, C_in, H, W)``."""

    _float_cls = nn.Conv2d


class QuantConv1d(_QuantConvNd, nn.Conv1d):
    """``nn.Conv1d`` with fake-quantized weight (axis 0) and input. Input ``(N, C_in, L)``."""

    _float_cls = nn.Conv1d


class QuantConv3d(_QuantConvNd, nn.Conv3d):
    """``nn.Conv3d`` with fake-quantized weight (axis 0) and input. Input ``(N, C_in, D, H, W)``
    (e.g. the voxel feature of the occupancy head ``BEVOCCHead3D``)."""

    _float_cls = nn.Conv3d


class QuantConvTranspose2d(QuantModule, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with fake-quantized weight and input.

    The weight is ``(C_in, C_out/groups, kH, kW)``: per-output-channel step sizes live on
    **axis 1** (``C_out/groups`` of them; with ``groups > 1`` a step is shared by the
    output channels of the same index in every group). This is also the axis of the ONNX
    per-channel DequantizeLinear that TensorRT expects for deconvolution weights.
    """

    _float_cls = nn.ConvTranspose2d
    _w_axis = 1

    def forward(self, input: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
        if self.padding_mode != 'zeros':
            raise ValueError('Only `zeros` padding mode is supported for ConvTranspose2d')
        output_padding = self._output_padding(input, output_size, self.stride, self.padding,
                                              self.kernel_size, 2, self.dilation)
        op = _lean.conv_op(self, transposed=True, output_padding=output_padding)
        out = None if op is None else _lean.lean_layer_forward(self, input, op, self.weight, self.bias)
        if out is not None:
            return out
        return F.conv_transpose2d(self.quant_input(input), self.quant_weight(), self.bias, self.stride,
                                  self.padding, output_padding, self.groups, self.dilation)


class QuantLinear(QuantModule, nn.Linear):
    """``nn.Linear`` with fake-quantized weight ``(out, in)`` (axis 0) and input ``(*, in)``."""

    _float_cls = nn.Linear

    def forward(self, input: Tensor) -> Tensor:
        out = _lean.lean_layer_forward(self, input, _lean.LINEAR_OP, self.weight, self.bias)
        if out is not None:
            return out
        return F.linear(self.quant_input(input), self.quant_weight(), self.bias)


class QuantMultiheadAttention(QuantModule, nn.MultiheadAttention):
    """``nn.MultiheadAttention`` with quantized input projections and, optionally, quantized
    attention matmuls.

    Own quantizers: ``weight_quantizer`` on ``in_proj_weight`` ``(3E, E)`` (axis 0) -- or on
    ``q_proj_weight`` when ``kdim``/``vdim`` differ from ``embed_dim``, with
    ``k_weight_quantizer``/``v_weight_quantizer`` on ``k_proj_weight``/``v_proj_weight`` --
    and ``input_quantizer``/``key_quantizer``/``value_quantizer`` on query/key/value
    (a key that *is* the query tensor reuses the quantized query, likewise for value, so in
    self-attention only ``input_quantizer`` is used).

    Attention matmuls (after :meth:`enable_attention_matmul_quantization`, which
    ``quantize_model`` calls for ``QuantConfig(quantize_attention_matmuls=True)``; None
    otherwise): per-tensor activation quantizers on the inputs of ``Q·Kᵀ``
    (``q_matmul_quantizer`` on the scaled queries ``q / sqrt(head_dim)``,
    ``k_matmul_quantizer`` on the keys, both ``(N*H, L|S, head_dim)``) and of ``A·V``
    (``attn_matmul_quantizer`` on the softmax weights ``(N*H, L, S)`` after dropout,
    ``v_matmul_quantizer`` on the values).

    ``out_proj`` becomes a :class:`QuantLinear` child (its own layer: it quantizes its
    weight and the attention context) and is applied as a module to the context.
    The attention core follows ``F.multi_head_attention_forward`` step by step (masks,
    ``bias_k``/``bias_v``, ``add_zero_attn``, dropout, unbatched inputs, ``is_causal``): with
    ``need_weights=True`` or quantized matmuls it runs the two matmuls explicitly, otherwise
    ``F.scaled_dot_product_attention`` (ONNX opset >= 14). Outputs are those of
    ``nn.MultiheadAttention``: ``(attn_output, attn_weights or None)``.
    """

    _float_cls = nn.MultiheadAttention
    _act_names = ('input_quantizer', 'key_quantizer', 'value_quantizer')
    #: quantizers of the attention matmul inputs: Q·Kᵀ (queries, keys) and A·V (weights, values)
    _matmul_names = ('q_matmul_quantizer', 'k_matmul_quantizer', 'attn_matmul_quantizer', 'v_matmul_quantizer')

    @property
    def _weight_names(self):  # type: ignore[override]
        if self._qkv_same_embed_dim:
            return (('in_proj_weight', 'weight_quantizer'),)
        return (('q_proj_weight', 'weight_quantizer'), ('k_proj_weight', 'k_weight_quantizer'),
                ('v_proj_weight', 'v_weight_quantizer'))

    def _ptqat_setup(self, w_bits, a_bits, w_per_channel, w_init, a_init) -> None:
        super()._ptqat_setup(w_bits, a_bits, w_per_channel, w_init, a_init)
        if self._qkv_same_embed_dim:
            self.register_module('k_weight_quantizer', None)
            self.register_module('v_weight_quantizer', None)
        for name in self._matmul_names:
            self.register_module(name, None)
        if not isinstance(self.out_proj, QuantModule):
            self.out_proj = QuantLinear.from_float(self.out_proj, w_bits, a_bits, w_per_channel,
                                                   w_init=w_init, a_init=a_init)

    def enable_attention_matmul_quantization(self, bits: int, init_method: str = DEFAULT_A_INIT) -> None:
        """Create the four per-tensor, signed matmul-input quantizers (see the class doc) with
        ``bits`` (2..8) and step-size init ``init_method``; calibrate afterwards."""
        check_bits(bits, 'attention matmul bits')
        device = self.out_proj.weight.device
        for name in self._matmul_names:
            self.register_module(name, LSQQuantizer(bits, signed=True, per_channel=False,
                                                    init_method=init_method).to(device))

    @property
    def quantizes_attention_matmuls(self) -> bool:
        """True when the attention matmul quantizers exist."""
        return self.q_matmul_quantizer is not None

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        q = self._q(self.input_quantizer, query)
        k = q if key is query else self._q(self.key_quantizer, key)
        v = k if value is key else q if value is query else self._q(self.value_quantizer, value)
        is_batched = query.dim() == 3
        if self.batch_first and is_batched:
            if k is v:
                if q is k:
                    q = k = v = q.transpose(1, 0)
                else:
                    q, k = (t.transpose(1, 0) for t in (q, k))
                    v = k
            else:
                q, k, v = (t.transpose(1, 0) for t in (q, k, v))
        out, weights = self._attention(q, k, v, key_padding_mask, need_weights, attn_mask, average_attn_weights,
                                       is_causal)
        if self.batch_first and is_batched:
            return out.transpose(1, 0), weights
        return out, weights

    def _attention(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor],
                   need_weights: bool, attn_mask: Optional[Tensor], average_attn_weights: bool,
                   is_causal: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """``F.multi_head_attention_forward`` on sequence-first ``(L, N, E)`` (or unbatched
        ``(L, E)``) inputs, with quantized projection weights, optional quantized matmul
        inputs and ``self.out_proj`` applied as a module."""
        num_heads = self.num_heads
        is_batched = F._mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
        if not is_batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt_len, bsz, embed_dim = query.shape
        head_dim = embed_dim // num_heads
        explicit = need_weights or self.quantizes_attention_matmuls
        key_padding_mask = F._canonical_mask(mask=key_padding_mask, mask_name='key_padding_mask',
                                             other_type=F._none_or_dtype(attn_mask), other_name='attn_mask',
                                             target_type=query.dtype)
        if is_causal and attn_mask is None:
            raise RuntimeError('Need attn_mask if specifying the is_causal hint (as nn.MultiheadAttention)')
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None  # as torch: the causal hint alone (SDPA's top-left causal mask)
        else:
            attn_mask = F._canonical_mask(mask=attn_mask, mask_name='attn_mask', other_type=None, other_name='',
                                          target_type=query.dtype, check_other=False)
            is_causal = False if key_padding_mask is not None else is_causal

        if self._qkv_same_embed_dim:
            q, k, v = F._in_projection_packed(query, key, value, self.quant_weight_named('in_proj_weight'),
                                              self.in_proj_bias)
        else:
            b_q, b_k, b_v = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
            q, k, v = F._in_projection(query, key, value, self.quant_weight_named('q_proj_weight'),
                                       self.quant_weight_named('k_proj_weight'),
                                       self.quant_weight_named('v_proj_weight'), b_q, b_k, b_v)
        if attn_mask is not None and attn_mask.dim() == 2:
            attn_mask = attn_mask.unsqueeze(0)
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.bias_k.repeat(1, bsz, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, bsz, 1)])
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
        k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
        v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
        if self.add_zero_attn:
            zeros = torch.zeros((bsz * num_heads, 1, head_dim), dtype=k.dtype, device=k.device)
            k, v = torch.cat([k, zeros], dim=1), torch.cat([v, zeros], dim=1)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        src_len = k.shape[1]
        if key_padding_mask is not None:
            key_padding_mask = (key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, num_heads, -1, -1)
                                .reshape(bsz * num_heads, 1, src_len))
            attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
        dropout_p = self.dropout if self.training else 0.0

        weights: Optional[Tensor] = None
        if explicit and is_causal and attn_mask is None:  # SDPA's is_causal mask, written out
            attn_mask = torch.zeros(tgt_len, src_len, dtype=q.dtype, device=q.device).masked_fill(
                torch.ones(tgt_len, src_len, dtype=torch.bool, device=q.device).triu(1), float('-inf'))[None]
        if explicit:
            context, weights = self._explicit_attention(q, k, v, attn_mask, dropout_p)
            weights = weights if need_weights else None
        else:
            if attn_mask is not None:
                attn_mask = (attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1
                             else attn_mask.view(bsz, num_heads, -1, src_len))
            context = F.scaled_dot_product_attention(q.view(bsz, num_heads, tgt_len, head_dim),
                                                     k.view(bsz, num_heads, src_len, head_dim),
                                                     v.view(bsz, num_heads, src_len, head_dim),
                                                     attn_mask, dropout_p, is_causal)
            context = context.reshape(bsz * num_heads, tgt_len, head_dim)
        out = self.out_proj(context.transpose(0, 1).reshape(tgt_len, bsz, embed_dim))
        if weights is not None:
            weights = weights.view(bsz, num_heads, tgt_len, src_len)
            if average_attn_weights:
                weights = weights.mean(dim=1)
        if not is_batched:
            out = out.squeeze(1)
            weights = None if weights is None else weights.squeeze(0)
        return out, weights

    def _explicit_attention(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor],
                            dropout_p: float) -> Tuple[Tensor, Tensor]:
        """``softmax(Q_q(q / sqrt(d)) · Q_k(k)ᵀ + mask)`` -> dropout -> ``A``; returns
        ``(Q_a(A) · Q_v(v), A)``. ``q`` ``(B, L, d)``, ``k``/``v`` ``(B, S, d)``, mask
        broadcastable to ``(B, L, S)``; ``B = N * heads``."""
        q_scaled = self._q(self.q_matmul_quantizer, q * math.sqrt(1.0 / float(q.shape[-1])))
        kt = self._q(self.k_matmul_quantizer, k).transpose(-2, -1)
        scores = torch.bmm(q_scaled, kt) if attn_mask is None else torch.baddbmm(attn_mask, q_scaled, kt)
        weights = torch.softmax(scores, dim=-1)
        if dropout_p > 0.0:
            weights = F.dropout(weights, p=dropout_p)
        context = torch.bmm(self._q(self.attn_matmul_quantizer, weights), self._q(self.v_matmul_quantizer, v))
        return context, weights

    def quant_weight_named(self, name: str) -> Tensor:
        """The (fake-)quantized projection weight ``name``."""
        q, w = getattr(self, dict(self._weight_names)[name]), getattr(self, name)
        if q is not None and _lean._lean_possible(q) and _lean._usable(q) and _lean.frozen_weight(q, w):
            return _lean.cached_quant_weight(q, w)
        return self._q(q, w)

    def quant_weight(self) -> Tensor:  # type: ignore[override]
        return self.quant_weight_named(self._weight_names[0][0])


class MatMul(nn.Module):
    """Float ``torch.matmul(a, b)`` as a module, so model code can mark a matmul between two
    runtime tensors (attention scores, dynamic weights) for quantization; ``quantize_model``
    turns it into :class:`QuantMatMul`."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(a, b)


class QuantMatMul(QuantModule, MatMul):
    """``torch.matmul(Q_a(a), Q_b(b))``: ``input_quantizer`` on ``a``, ``other_quantizer`` on
    ``b``, both per-tensor signed with ``a_bits`` (None -> a plain matmul). No weights
    (``weight_quantizer`` is None); ``w_bits``/``w_per_channel`` are accepted for a uniform
    ``from_float`` and ignored. Construct directly as ``QuantMatMul(a_bits=8)`` or convert a
    :class:`MatMul` with ``quantize_model``."""

    _float_cls = MatMul
    _weight_names = ()
    _act_names = ('input_quantizer', 'other_quantizer')

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(self._q(self.input_quantizer, a), self._q(self.other_quantizer, b))


class Add(nn.Module):
    """Float ``a + b`` as a module (a residual add): ``quantize_model`` turns it into
    :class:`QuantAdd`. The quantization placement rules (:mod:`ptqat.quant.placement`) put one
    into each registered residual block when ``QuantConfig.quantize_residual_adds`` is set."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


class QuantAdd(QuantModule, Add):
    """``Q_a(a) + Q_r(b)``, a quantized residual add: ``input_quantizer`` on the main branch
    ``a`` (the block's last conv + norm output), ``residual_quantizer`` on the shortcut ``b``
    (the block input or the downsample output); per-tensor, ``a_bits``. No weights. With
    ``QuantConfig.quantize_residual_adds='residual'`` (TensorRT's / ModelOpt's placement: the
    conv branch stays unquantized so that TensorRT fuses conv + add) ``input_quantizer`` is
    None; with ``'both'`` both operands are quantized."""

    _float_cls = Add
    _weight_names = ()
    _act_names = ('input_quantizer', 'residual_quantizer')

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self._q(self.input_quantizer, a) + self._q(self.residual_quantizer, b)


def quantized_layers(model: nn.Module) -> List[Tuple[str, QuantModule]]:
    """``(qualified name, layer)`` of every quantized layer, in module registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantModule)]


def iter_quantizers(model: nn.Module) -> Iterator[Tuple[str, LSQQuantizer]]:
    """``(qualified name, quantizer)`` of every LSQ quantizer in ``model``."""
    for n, m in model.named_modules():
        if isinstance(m, LSQQuantizer):
            yield n, m
