"""Quantized layers and the registry."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ptqat.quant import (LSQQuantizer, MatMul, QuantConv1d, QuantConv2d, QuantConv3d, QuantConvTranspose2d, QuantLinear,
                         QuantMatMul, QuantModule, QuantMultiheadAttention, get_quant_module_class,
                         register_quant_module, registered_quant_modules, unregister_quant_module)
from quant_toys import set_all_quantizers


@pytest.mark.parametrize('float_layer, quant_cls, x', [
    (nn.Conv2d(4, 6, 3, padding=1, groups=2), QuantConv2d, torch.randn(2, 4, 5, 5)),
    (nn.Conv2d(4, 6, 3, padding=1, padding_mode='reflect'), QuantConv2d, torch.randn(2, 4, 5, 5)),
    (nn.Conv1d(4, 6, 3), QuantConv1d, torch.randn(2, 4, 9)),
    (nn.Conv3d(4, 6, 3, padding=1), QuantConv3d, torch.randn(2, 4, 3, 5, 5)),
    (nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1), QuantConvTranspose2d, torch.randn(2, 4, 5, 5)),
    (nn.Linear(4, 6), QuantLinear, torch.randn(3, 7, 4)),
])
def test_from_float_shares_parameters_and_matches_when_disabled(float_layer, quant_cls, x):
    q = quant_cls.from_float(float_layer, 4, 8)
    assert isinstance(q, type(float_layer)) and isinstance(q, QuantModule)
    assert q.weight is float_layer.weight and q.bias is float_layer.bias
    assert set(float_layer.state_dict()) <= set(q.state_dict())
    set_all_quantizers(q, False)
    assert torch.equal(q(x), float_layer(x))
    set_all_quantizers(q, True)
    q.init_weight_quantizers()
    q.input_quantizer.init_step_size(x)
    y = q(x)
    assert y.shape == float_layer(x).shape and not torch.equal(y, float_layer(x))
    assert not isinstance(float_layer, QuantModule) and not hasattr(float_layer, 'weight_quantizer')


def test_conv3d_is_the_convolution_of_the_fake_quantized_input_and_weight():
    """QuantConv3d (the occupancy head's voxel conv) is exactly F.conv3d of its quantizers'
    outputs, per output channel on axis 0, and nn.Conv3d is quantized by quantize_model."""
    import torch.nn.functional as F
    from ptqat.quant import QuantConfig, quantize_model
    torch.manual_seed(0)
    layer = nn.Conv3d(3, 5, 3, padding=1, stride=(1, 2, 2))
    x = torch.randn(2, 3, 4, 8, 8)
    q = QuantConv3d.from_float(layer, 4, 8)
    q.init_weight_quantizers()
    q.input_quantizer.init_step_size(x)
    assert q.weight_quantizer.ch_axis == 0 and q.weight_quantizer.step_size.shape == (5,)
    wq, xq = q.weight_quantizer(q.weight), q.input_quantizer(x)
    assert len(torch.unique(wq[0])) <= 16 and len(torch.unique(xq)) <= 256  # 4 / 8 bits
    with torch.no_grad():
        assert torch.equal(q(x), F.conv3d(xq, wq, q.bias, stride=(1, 2, 2), padding=1))
    net = nn.Sequential(nn.Conv3d(2, 2, 1), nn.ReLU())
    quantize_model(net, QuantConfig(w_bits=4, a_bits=8))
    assert isinstance(net[0], QuantConv3d)


def test_conv_transpose_per_channel_axis_is_output_channel():
    layer = nn.ConvTranspose2d(3, 5, 2, stride=2)           # weight (in=3, out=5, 2, 2)
    scales = torch.tensor([0.01, 0.1, 1.0, 10.0, 100.0])
    with torch.no_grad():
        layer.weight.copy_(torch.randn(3, 5, 2, 2) * scales.reshape(1, 5, 1, 1))
    q = QuantConvTranspose2d.from_float(layer, 4, None)
    assert q.weight_quantizer.ch_axis == 1 and q.weight_quantizer.step_size.shape == (5,)
    q.init_weight_quantizers()
    step = q.weight_quantizer.step_size.detach()
    assert (step[1:] > step[:-1]).all() and step[-1] / step[0] > 1e3  # follows the per-output scales
    wq = q.quant_weight().detach()
    rel = ((wq - layer.weight) ** 2).sum(dim=(0, 2, 3)) / (layer.weight ** 2).sum(dim=(0, 2, 3))
    assert (rel < 0.05).all()  # every output channel well quantized, even the tiny one
    assert q(torch.randn(1, 3, 4, 4), output_size=[9, 9]).shape == (1, 5, 9, 9)


def test_conv_weight_per_tensor_option():
    q = QuantConv2d.from_float(nn.Conv2d(3, 4, 3), 4, 8, w_per_channel=False)
    assert not q.weight_quantizer.per_channel and q.weight_quantizer.step_size.shape == (1,)


def test_weight_only_has_no_input_quantizer():
    q = QuantLinear.from_float(nn.Linear(3, 4), 4, None)
    assert q.input_quantizer is None and isinstance(q.weight_quantizer, LSQQuantizer)
    assert q.activation_quantizers() == []


def test_direct_construction():
    q = QuantConv2d(3, 4, 3, w_bits=3, a_bits=5)
    assert q.weight_quantizer.bits == 3 and q.input_quantizer.bits == 5
    assert q.weight_quantizer.step_size.shape == (4,)


def test_from_float_type_checks():
    with pytest.raises(TypeError, match='expects a Linear'):
        QuantLinear.from_float(nn.Conv2d(1, 1, 1), 4, 8)
    q = QuantLinear.from_float(nn.Linear(2, 2), 4, 8)
    with pytest.raises(TypeError, match='already quantized'):
        QuantLinear.from_float(q, 4, 8)
    with pytest.raises(ValueError, match='w_bits must be an integer in 2..8, got 9'):
        QuantLinear.from_float(nn.Linear(2, 2), 9, 8)
    with pytest.raises(ValueError, match='a_bits must be an integer in 2..8, got 1'):
        QuantLinear.from_float(nn.Linear(2, 2), 4, 1)


@pytest.mark.parametrize('batch_first', [True, False])
@pytest.mark.parametrize('kdim', [None, 12])
def test_quant_mha_matches_float_when_disabled(batch_first, kdim):
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first, kdim=kdim, vdim=kdim).eval()
    q = QuantMultiheadAttention.from_float(mha, 4, 8)
    assert isinstance(q.out_proj, QuantLinear) and q.out_proj.weight is mha.out_proj.weight
    assert set(mha.state_dict()) <= set(q.state_dict())
    set_all_quantizers(q, False)
    shape = (2, 5, 16) if batch_first else (5, 2, 16)
    query = torch.randn(*shape)
    kv = torch.randn(*shape[:-1], kdim or 16)
    key_padding_mask = torch.zeros(2, 5, dtype=torch.bool)
    key_padding_mask[0, -1] = True
    attn_mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    for args, kwargs in [((query, kv, kv), {}),
                         ((query, kv, kv), dict(key_padding_mask=key_padding_mask, attn_mask=attn_mask)),
                         ((query, kv, kv), dict(need_weights=False)),
                         ((query, kv, kv), dict(average_attn_weights=False))]:
        if kdim is None:
            args = (query, query, query)
        ref_out, ref_w = mha(*args, **kwargs)
        out, w = q(*args, **kwargs)
        assert torch.allclose(out, ref_out, atol=1e-6)
        assert (w is None and ref_w is None) or torch.allclose(w, ref_w, atol=1e-6)


def test_quant_mha_quantizes_and_backprops():
    mha = nn.MultiheadAttention(8, 2)
    q = QuantMultiheadAttention.from_float(mha, 4, 8)
    x = torch.randn(3, 2, 8)
    q.init_weight_quantizers()
    q.out_proj.init_weight_quantizers()
    q.input_quantizer.init_step_size(x)
    q.out_proj.input_quantizer.start_observation()
    with torch.no_grad():
        q(x, x, x)
    assert q.out_proj.input_quantizer.finish_observation()
    out, _ = q(x, x, x)
    ref, _ = mha(x, x, x)
    assert not torch.allclose(out, ref) and torch.allclose(out, ref, atol=0.5)
    out.sum().backward()
    assert q.weight_quantizer.step_size.grad is not None and q.in_proj_weight.grad is not None
    assert not q.key_quantizer.is_initialized  # self-attention reuses the query quantization
    assert q.weight_quantizer.step_size.shape == (24,)


def test_quant_mha_separate_weights_have_three_quantizers():
    q = QuantMultiheadAttention.from_float(nn.MultiheadAttention(8, 2, kdim=4, vdim=6), 4, None)
    names = [w for w, _ in q._weight_names]
    assert names == ['q_proj_weight', 'k_proj_weight', 'v_proj_weight']
    assert q.k_weight_quantizer.step_size.shape == (8,) and q.v_weight_quantizer.step_size.shape == (8,)
    assert len(q.weight_quantizer_pairs()) == 3


def test_quant_matmul():
    q = QuantMatMul.from_float(MatMul(), 4, 6)
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    set_all_quantizers(q, False)
    assert torch.equal(q(a, b), a @ b)
    set_all_quantizers(q, True)
    q.input_quantizer.init_step_size(a)
    q.other_quantizer.init_step_size(b)
    expected = q.input_quantizer(a) @ q.other_quantizer(b)
    assert torch.equal(q(a, b), expected) and not torch.allclose(expected, a @ b)
    assert q.weight_quantizer_pairs() == [] and len(q.activation_quantizers()) == 2
    assert QuantMatMul.from_float(MatMul(), 4, None)(a, b).equal(a @ b)


def test_registry_mro_lookup():
    class MyConv(nn.Conv2d):
        pass

    class MyQuantConv(QuantConv2d):
        _float_cls = MyConv

    assert get_quant_module_class(nn.modules.linear.NonDynamicallyQuantizableLinear(2, 2)) is QuantLinear
    assert get_quant_module_class(MyConv) is QuantConv2d           # via the MRO
    assert get_quant_module_class(QuantConv2d) is None             # never re-quantized
    assert get_quant_module_class(nn.BatchNorm2d) is None
    register_quant_module(MyConv, MyQuantConv)
    try:
        assert get_quant_module_class(MyConv(1, 1, 1)) is MyQuantConv  # exact type first
        assert get_quant_module_class(nn.Conv2d) is QuantConv2d
        with pytest.raises(ValueError, match='already registered to MyQuantConv'):
            register_quant_module(MyConv, QuantConv2d)
        register_quant_module(MyConv, MyQuantConv)  # same class again: fine
    finally:
        unregister_quant_module(MyConv)
    assert MyConv not in registered_quant_modules()


def test_registry_decorator_and_type_errors():
    class Foo(nn.Module):
        pass

    @register_quant_module(Foo)
    class QuantFoo(QuantModule, Foo):
        _float_cls = Foo
        _weight_names = ()
    try:
        assert get_quant_module_class(Foo()) is QuantFoo
    finally:
        unregister_quant_module(Foo)
    with pytest.raises(TypeError, match='quant_cls must be'):
        register_quant_module(Foo, nn.Linear)
    with pytest.raises(TypeError, match='float_cls must be'):
        register_quant_module(int, QuantLinear)
