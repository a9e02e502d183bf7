"""QuantConfig validation and quantize_model."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ptqat.quant import (QuantConfig, QuantConv2d, QuantLinear, QuantMatMul, QuantModule, QuantMultiheadAttention,
                         quantize_model, quantized_layers)


def test_defaults_are_w4a8_per_channel():
    c = QuantConfig()
    assert (c.w_bits, c.a_bits, c.w_per_channel, c.quantize_inputs) == (4, 8, True, True)
    assert c.w_init == 'mse' and c.a_init == 'percentile' and c.skip == () and c.overrides == {}


def test_quantize_model_cnn_order_and_types(cnn):
    names = quantize_model(cnn)
    assert names == ['conv1', 'conv2', 'up', 'proj', 'fc']
    assert names == [n for n, _ in quantized_layers(cnn)]
    assert isinstance(cnn.conv1, QuantConv2d) and isinstance(cnn.fc, QuantLinear)
    assert isinstance(cnn.bn1, nn.BatchNorm2d) and not isinstance(cnn.bn1, QuantModule)


def test_quantize_model_transformer_nested_out_proj(transformer):
    names = quantize_model(transformer, QuantConfig(a_bits=None))
    assert names == ['embed', 'attn', 'attn.out_proj', 'ffn1', 'ffn2', 'mix', 'head']
    assert isinstance(transformer.attn, QuantMultiheadAttention)
    assert isinstance(transformer.attn.out_proj, QuantLinear) and isinstance(transformer.mix, QuantMatMul)
    assert transformer.attn.input_quantizer is None and transformer.embed.input_quantizer is None


def test_skip_and_overrides(transformer):
    overrides = {r'^embed$': {'w_bits': 8, 'a_bits': 6}, r'ffn': {'quantize_inputs': False},
                 r'ffn2': {'w_bits': 3, 'w_per_channel': False}}
    cfg = QuantConfig(skip=(r'^head$', r'out_proj'), overrides=overrides)
    names = quantize_model(transformer, cfg)
    assert 'head' not in names and 'attn.out_proj' not in names and 'attn' in names
    assert type(transformer.head) is nn.Linear
    assert type(transformer.attn.out_proj) is nn.modules.linear.NonDynamicallyQuantizableLinear
    assert transformer.embed.weight_quantizer.bits == 8 and transformer.embed.input_quantizer.bits == 6
    assert transformer.ffn1.input_quantizer is None and transformer.ffn1.weight_quantizer.bits == 4
    assert transformer.ffn2.weight_quantizer.bits == 3 and not transformer.ffn2.weight_quantizer.per_channel
    assert transformer.ffn2.input_quantizer is None   # later overrides only change their own fields


def test_skip_parent_container_by_search(cnn):
    model = nn.Sequential(cnn, nn.Linear(10, 2))
    names = quantize_model(model, QuantConfig(skip=(r'^0\.',)))
    assert names == ['1']


def test_double_quantization_raises(cnn):
    quantize_model(cnn)
    with pytest.raises(RuntimeError, match="already quantized.*'conv1'"):
        quantize_model(cnn)


def test_shared_module_replaced_everywhere():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    names = quantize_model(model)
    assert names == ['0'] and model[0] is model[2] and isinstance(model[0], QuantLinear)


def test_root_quantizable_raises():
    with pytest.raises(ValueError, match='root module'):
        quantize_model(nn.Linear(2, 2))


def test_model_output_unchanged_when_quantizers_disabled(transformer):
    x = torch.randn(2, 5, 6)
    ref = transformer(x)
    quantize_model(transformer)
    for m in transformer.modules():
        if hasattr(m, 'enabled'):
            m.enabled = False
    assert torch.allclose(transformer(x), ref, atol=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    (dict(w_bits=1), 'w_bits must be an integer in 2..8, got 1'),
    (dict(w_bits=9), 'got 9'),
    (dict(a_bits=16), 'a_bits must be an integer in 2..8, got 16'),
    (dict(w_bits=4.0), 'got 4.0'),
    (dict(w_init='foo'), r"w_init='foo'.*lsq, minmax, percentile, mse"),
    (dict(a_init='kl'), r"a_init='kl'"),
    (dict(w_per_channel='yes'), "w_per_channel must be a bool, got 'yes'"),
    (dict(skip=('conv[',)), r"invalid regular expression in skip: 'conv\['"),
    (dict(overrides={'(': {'w_bits': 8}}), r"invalid regular expression in overrides: '\('"),
    (dict(overrides={'conv': {'bits': 8}}), r"unknown field\(s\) \['bits'\].*allowed: w_bits"),
    (dict(overrides={'conv': {'w_bits': 12}}), r"overrides\['conv'\]\.w_bits must be an integer in 2..8, got 12"),
    (dict(overrides={'conv': 8}), r"overrides\['conv'\] must be a dict, got 8"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantConfig(**kwargs)


def test_from_dict():
    c = QuantConfig.from_dict(dict(w_bits=3, a_bits=None, skip=['head'], overrides={'conv1': {'w_bits': 8}}))
    assert c.w_bits == 3 and c.a_bits is None and c.skip == ('head',)
    assert QuantConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match=r"unknown QuantConfig key\(s\) \['a_bit', 'wbits'\]; allowed: w_bits"):
        QuantConfig.from_dict(dict(wbits=4, a_bit=8))


def test_unmatched_patterns_raise_at_quantize_time(cnn):
    with pytest.raises(ValueError, match=r"skip pattern 'backbone' matches no quantizable layer"):
        quantize_model(cnn, QuantConfig(skip=('backbone',)))
    with pytest.raises(ValueError, match=r"overrides pattern '\^bn1\$' matches no quantizable layer"):
        quantize_model(cnn, dict(overrides={'^bn1$': {'w_bits': 8}}))
    assert not quantized_layers(cnn)  # nothing was converted
