"""QuantMultiheadAttention: no identity matmul, SDPA export, quantized attention matmuls
(issue 9 item 4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from ptqat.quant import (QuantConfig, QuantModule, QuantMultiheadAttention, calibrate, export_onnx, iter_quantizers,
                         quantize_model)
from quant_toys import set_all_quantizers

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
from onnx import numpy_helper  # noqa: E402

MATMUL_QUANTIZERS = ('q_matmul_quantizer', 'k_matmul_quantizer', 'attn_matmul_quantizer', 'v_matmul_quantizer')


class SelfAttention(nn.Module):
    """``(N, L, E)`` -> ``(N, L, E)``: embedding, batch-first self-attention, head."""

    def __init__(self, dim: int = 16, heads: int = 4, need_weights: bool = True) -> None:
        super().__init__()
        self.embed = nn.Linear(6, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.attn(h, h, h, need_weights=self.need_weights)[0]


def _batches(n=3):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 7, 6, generator=g) for _ in range(n)]


def _quantized(need_weights=True, matmuls=True, **cfg):
    torch.manual_seed(0)
    model = SelfAttention(need_weights=need_weights).eval()
    quantize_model(model, QuantConfig(w_bits=4, a_bits=8, quantize_attention_matmuls=matmuls, **cfg))
    calibrate(model, _batches(), progress=False)
    return model


CASES = {
    'self': dict(),
    'self, no weights (SDPA)': dict(need_weights=False),
    'per-head weights': dict(average_attn_weights=False),
    'masks': dict(masks=True),
    'masks, no weights': dict(masks=True, need_weights=False),
    'causal, no weights': dict(causal=True, need_weights=False),
    'unbatched': dict(unbatched=True),
}


@pytest.mark.parametrize('matmuls', [False, True])
@pytest.mark.parametrize('extra', [dict(), dict(bias=True, add_bias_kv=True, add_zero_attn=True), dict(kdim=12)],
                         ids=['plain', 'bias_kv+zero_attn', 'kdim'])
@pytest.mark.parametrize('case', list(CASES))
def test_equals_float_mha_when_quantizers_are_disabled(case, extra, matmuls):
    opts = dict(CASES[case])
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, kdim=extra.get('kdim'), vdim=extra.get('kdim'),
                                add_bias_kv=extra.get('add_bias_kv', False),
                                add_zero_attn=extra.get('add_zero_attn', False)).eval()
    q = QuantMultiheadAttention.from_float(mha, 4, 8)
    if matmuls:
        q.enable_attention_matmul_quantization(8)
    set_all_quantizers(q, False)
    g = torch.Generator().manual_seed(1)
    L, N = 5, 3
    query = torch.randn(L, N, 16, generator=g)
    kv = torch.randn(L, N, extra.get('kdim') or 16, generator=g)
    args = (query, query, query) if 'kdim' not in extra else (query, kv, kv)
    kwargs = dict(need_weights=opts.get('need_weights', True),
                  average_attn_weights=opts.get('average_attn_weights', True))
    if opts.get('masks'):
        kpm = torch.zeros(N, L, dtype=torch.bool)
        kpm[0, -2:] = True
        kwargs.update(key_padding_mask=kpm, attn_mask=torch.triu(torch.ones(L, L, dtype=torch.bool), 1))
    if opts.get('causal'):
        kwargs.update(attn_mask=nn.Transformer.generate_square_subsequent_mask(L), is_causal=True)
    if opts.get('unbatched'):
        args = tuple(a[:, 0] for a in args)
    with torch.no_grad():
        ref_out, ref_w = mha(*args, **kwargs)
        out, w = q(*args, **kwargs)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    assert (w is None) == (ref_w is None) and (w is None or torch.allclose(w, ref_w, atol=1e-6))


def _is_identity(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.shape[0] == a.shape[1] > 1 and np.array_equal(a, np.eye(a.shape[0], dtype=a.dtype))


def _export(model, tmp_path, name, **kw):
    path = export_onnx(model, _batches()[0], tmp_path / f'{name}.onnx', **kw)
    return path, onnx.load(path).graph


def _ort_diff(model, path):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    worst = 0.0
    for x in _batches(2):
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            worst = max(worst, float(np.abs(out - model(x).numpy()).max()))
    return worst


@pytest.mark.parametrize('need_weights', [True, False])
@pytest.mark.parametrize('matmuls', [False, True])
def test_onnx_has_no_identity_matmul_and_matches_onnxruntime(tmp_path, need_weights, matmuls):
    model = _quantized(need_weights=need_weights, matmuls=matmuls)
    path, graph = _export(model, tmp_path, 'attn')
    consts = [numpy_helper.to_array(i) for i in graph.initializer]
    consts += [numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == 'Constant']
    assert not any(_is_identity(c) for c in consts)
    matmuls_in_graph = sum(n.op_type in ('MatMul', 'Gemm') for n in graph.node)
    # embed, packed in-projection, Q·Kᵀ, A·V, out_proj
    assert matmuls_in_graph == 5
    opset = {o.domain: o.version for o in onnx.load(path).opset_import}['']
    assert opset == 14
    n_qdq = sum(n.op_type == 'QuantizeLinear' for n in graph.node)
    # weights + inputs of embed, in_proj, out_proj (6), plus the four matmul inputs
    assert n_qdq == 6 + (4 if matmuls else 0)
    assert _ort_diff(model, path) <= 1e-5


def test_opset_13_is_refused_for_attention(tmp_path):
    model = _quantized(need_weights=False)
    with pytest.raises(ValueError, match=r"opset must be >= 14 for quantized attention layers \('attn'"):
        export_onnx(model, _batches()[0], tmp_path / 'x.onnx', opset=13)


def test_matmul_quantizers_calibrate_quantize_and_get_gradients():
    model = _quantized(matmuls=True)
    attn = model.attn
    qs = [getattr(attn, n) for n in MATMUL_QUANTIZERS]
    assert all(q.is_initialized and not q.per_channel and q.bits == 8 for q in qs)
    assert attn.activation_quantizers()[-4:] == qs
    x = _batches()[0]
    out = model(x)
    for q in qs:  # each one changes the output on its own
        q.enabled = False
        with torch.no_grad():
            assert not torch.equal(model(x), out)
        q.enabled = True
    out.square().sum().backward()
    assert all(q.step_size.grad is not None and q.step_size.grad.abs().sum() > 0 for q in qs)
    names = {n for n, _ in iter_quantizers(model)}
    assert {f'attn.{n}' for n in MATMUL_QUANTIZERS} <= names
    assert all(f'attn.{n}.step_size' in model.state_dict() for n in MATMUL_QUANTIZERS)


def test_matmul_quantization_is_opt_in_and_needs_activation_bits():
    plain = _quantized(matmuls=False)
    assert all(getattr(plain.attn, n) is None for n in MATMUL_QUANTIZERS)
    assert not any('matmul_quantizer' in k for k in plain.state_dict())
    with pytest.raises(ValueError, match="layer 'attn': quantize_attention_matmuls needs activation bits"):
        quantize_model(SelfAttention(), QuantConfig(a_bits=None, quantize_attention_matmuls=True))
    with pytest.raises(ValueError, match='quantize_attention_matmuls must be a bool'):
        QuantConfig(quantize_attention_matmuls='yes')


def test_auto_sign_makes_the_softmax_input_unsigned():
    model = _quantized(matmuls=True, a_signed='auto')
    assert not model.attn.attn_matmul_quantizer.signed          # softmax weights are >= 0
    assert model.attn.q_matmul_quantizer.signed and model.attn.k_matmul_quantizer.signed


def test_attention_matmul_request_without_attention_layer_is_an_error():
    convs = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1))
    with pytest.raises(ValueError, match=r"quantize_attention_matmuls=True, but none of the 2 layer\(s\).*'0'"):
        quantize_model(convs, QuantConfig(quantize_attention_matmuls=True))
    assert not any(isinstance(m, QuantModule) for m in convs.modules())  # refused before converting anything
    with pytest.raises(ValueError, match="e.g. 'embed'"):  # an override pointing at a non-attention layer
        quantize_model(SelfAttention(), QuantConfig(overrides={r'^embed$': dict(quantize_attention_matmuls=True)}))
