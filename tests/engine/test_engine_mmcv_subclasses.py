"""mmcv's Conv2d subclasses with their own forward are refused by quantize_model, and the
repository's detectors contain none (they quantize unchanged)."""
import pytest
import torch.nn as nn
from mmcv.cnn.bricks.conv2d_adaptive_padding import Conv2dAdaptivePadding
from mmcv.cnn.bricks.conv_ws import ConvWS2d

from ptqat.quant import QuantConfig, quantize_model
from ptqat.quant.registry import overridden_forward_methods


@pytest.mark.parametrize('cls', [Conv2dAdaptivePadding, ConvWS2d])
def test_mmcv_conv_subclasses_are_refused(cls):
    model = nn.Sequential(cls(3, 4, 3, stride=2))
    with pytest.raises(TypeError, match=rf'{cls.__name__} subclasses Conv2d but overrides {cls.__name__}.forward'
                                        r'.*register_quant_module'):
        quantize_model(model, QuantConfig())


@pytest.mark.parametrize('config', ['configs/bevdet/bevdet-tiny_synth.py',
                                    'configs/bevdepth4d/bevdepth4d-tiny_synth.py'])
def test_detectors_have_no_overriding_subclass(config):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet3d.registry import MODELS
    import ptqat  # noqa: F401  (registers the models)
    init_default_scope('mmdet3d')
    model = MODELS.build(Config.fromfile(config).model)
    offending = {type(m).__name__ for m in model.modules() if overridden_forward_methods(type(m))}
    assert not offending
    assert len(quantize_model(model, QuantConfig())) > 10


@pytest.mark.parametrize('make', [lambda w: w.Linear(6, 5), lambda w: w.Conv2d(3, 4, 3, padding=1),
                                  lambda w: w.ConvTranspose2d(3, 4, 2, stride=2)])
def test_mmcv_empty_tensor_wrappers_quantize_exactly(make):
    """mmcv's wrappers (mmcv FFN's Linear, ...) only add an empty-input path for torch <= 1.5:
    they are registered with the generic quantized layers, whose output equals theirs."""
    import torch
    from mmcv.cnn.bricks import wrappers

    import ptqat.engine  # noqa: F401  (registers the mmcv layers)
    from ptqat.quant import iter_quantizers
    torch.manual_seed(0)
    model = nn.Sequential(make(wrappers))
    x = torch.randn(2, 6) if isinstance(model[0], nn.Linear) else torch.randn(2, 3, 8, 8)
    ref = model(x)
    assert quantize_model(model, QuantConfig()) == ['0']
    for _, q in iter_quantizers(model):
        q.enabled = False
    assert torch.equal(model(x), ref)
