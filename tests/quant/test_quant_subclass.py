"""Conv/Linear subclasses with their own computation are not silently quantized as their base."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ptqat.quant import (QuantConfig, QuantConv2d, QuantLinear, check_quantizable, quantize_model,
                         register_quant_module, unregister_quant_module)


class SamePadConv(nn.Conv2d):
    """Pads so that the output has the input's size (like mmcv's Conv2dAdaptivePadding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, [1, 1, 1, 1]))


class ScaledConv(nn.Conv2d):
    """Overrides only ``_conv_forward`` (like a weight-standardised conv)."""

    def _conv_forward(self, x, weight, bias):
        return super()._conv_forward(x, 2.0 * weight, bias)


class PlainLinear(nn.Linear):
    """Adds nothing to what it computes: may be quantized as QuantLinear."""

    note = 'plain'


def _net(cls):
    return nn.Sequential(cls(3, 4, 3), nn.ReLU())


@pytest.mark.parametrize('cls, method', [(SamePadConv, 'SamePadConv.forward'),
                                         (ScaledConv, 'ScaledConv._conv_forward')])
def test_subclass_with_own_computation_is_refused(cls, method):
    model = _net(cls)
    with pytest.raises(TypeError, match=rf"layer '0': .*{cls.__name__} subclasses Conv2d but overrides "
                                        rf"{method}.*register_quant_module\({cls.__name__}, QuantClass\)"):
        quantize_model(model, QuantConfig())
    assert type(model[0]) is cls  # nothing was converted


def test_subclass_can_be_skipped():
    model = _net(SamePadConv)
    assert quantize_model(model, QuantConfig(skip=(r'^0$',))) == []
    assert type(model[0]) is SamePadConv


def test_subclass_without_override_maps_to_base():
    model = nn.Sequential(PlainLinear(3, 4))
    check_quantizable(model[0])
    assert quantize_model(model) == ['0'] and isinstance(model[0], QuantLinear)


def test_registered_subclass_is_quantized_with_its_class():
    class QuantSamePadConv(QuantConv2d):
        _float_cls = SamePadConv

        def forward(self, x):
            return super().forward(F.pad(x, [1, 1, 1, 1]))

    register_quant_module(SamePadConv, QuantSamePadConv)
    try:
        model = _net(SamePadConv)
        x = torch.randn(2, 3, 8, 8)
        ref = model(x)
        quantize_model(model, QuantConfig(a_bits=None))
        assert type(model[0]) is QuantSamePadConv
        model[0].weight_quantizer.enabled = False
        torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
        assert ref.shape == (2, 4, 8, 8)
    finally:
        unregister_quant_module(SamePadConv)
