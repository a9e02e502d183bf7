"""calibrate(): PTQ initialisation of weights and activations."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ptqat.quant import QuantConfig, calibrate, iter_quantizers, quantize_model
from quant_toys import ToyCNN, cnn_batches


def test_calibrate_initialises_everything_and_restores_mode(cnn):
    quantize_model(cnn)
    cnn.train()
    cnn.conv2.eval()  # mixed modes must come back as they were
    bn_mean = cnn.bn1.running_mean.clone()
    calibrate(cnn, cnn_batches(), progress=False)
    assert all(q.is_initialized and bool(q.initialized) for _, q in iter_quantizers(cnn))
    assert cnn.training and not cnn.conv2.training and cnn.bn1.training
    assert torch.equal(cnn.bn1.running_mean, bn_mean)  # ran in eval mode
    assert all(not q.observing for _, q in iter_quantizers(cnn))
    y = cnn(cnn_batches(1)[0])
    assert torch.isfinite(y).all()


def test_weight_steps_match_direct_init(cnn):
    quantize_model(cnn, QuantConfig(w_init='minmax'))
    calibrate(cnn, cnn_batches(), progress=False)
    w = cnn.conv1.weight.detach()
    assert torch.allclose(cnn.conv1.weight_quantizer.step_size, w.abs().amax(dim=(1, 2, 3)) / 7)
    w = cnn.up.weight.detach()  # ConvTranspose: axis 1
    assert torch.allclose(cnn.up.weight_quantizer.step_size, w.abs().amax(dim=(0, 2, 3)) / 7)


def test_activation_steps_observe_weight_quantized_network_over_all_batches(cnn):
    quantize_model(cnn, QuantConfig(a_init='minmax'))
    batches = cnn_batches(4)
    calibrate(cnn, batches, progress=False)
    # conv1's input is the raw batch: global max |x| / 127
    expected = torch.cat(batches).abs().max() / 127
    assert cnn.conv1.input_quantizer.step_size.item() == pytest.approx(expected.item(), rel=1e-6)


def test_forward_fn_and_batch_types():
    class TwoIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 4)
            self.b = nn.Linear(3, 4)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    model = TwoIn()
    quantize_model(nn.Sequential(model))
    xs = [torch.randn(2, 3) for _ in range(2)]
    calibrate(model, [(x, 2 * x) for x in xs], progress=False)            # tuple -> model(*batch)
    s_tuple = model.b.input_quantizer.step_size.clone()
    calibrate(model, [{'x': x, 'y': 2 * x} for x in xs], progress=False)  # dict -> model(**batch)
    assert torch.equal(model.b.input_quantizer.step_size, s_tuple)
    calls = []
    calibrate(model, xs, forward_fn=lambda m, b: calls.append(1) or m(b, b), progress=False)
    assert len(calls) == 2


def test_reduce_fn_called_in_order_with_ops(cnn):
    quantize_model(cnn, QuantConfig(a_init='lsq'))
    ops = []
    calibrate(cnn, cnn_batches(2), progress=False, reduce_fn=lambda t, op: ops.append(op) or t)
    assert ops == ['sum', 'sum'] * 5


def test_weight_only_model_consumes_no_batches(cnn):
    quantize_model(cnn, QuantConfig(a_bits=None))

    def batches():
        raise AssertionError('batches must not be consumed')
        yield  # pragma: no cover

    calibrate(cnn, batches(), progress=False)
    assert all(q.is_initialized for _, q in iter_quantizers(cnn))


def test_errors(cnn):
    with pytest.raises(ValueError, match='no quantized layers'):
        calibrate(cnn, cnn_batches(), progress=False)
    quantize_model(cnn)
    with pytest.raises(ValueError, match='yielded no batch'):
        calibrate(cnn, [], progress=False)
    assert all(not q.observing for _, q in iter_quantizers(cnn))


def test_layer_that_never_runs_warns():
    model = nn.ModuleDict({'used': nn.Linear(2, 2), 'unused': nn.Linear(2, 2)})
    quantize_model(model)
    with pytest.warns(RuntimeWarning, match=r"never ran.*\['unused'\]"):
        calibrate(model, [torch.randn(3, 2)], forward_fn=lambda m, b: m['used'](b), progress=False)
    assert model['used'].input_quantizer.is_initialized and not model['unused'].input_quantizer.is_initialized


def test_progress_bar_goes_to_stderr(cnn, capsys):
    quantize_model(cnn)
    calibrate(cnn, cnn_batches(2), progress=True)
    out, err = capsys.readouterr()
    assert out == '' and 'calibrate' in err


def test_exception_restores_state(cnn):
    quantize_model(cnn)
    cnn.train()

    def bad_forward(m, b):
        raise KeyError('boom')

    with pytest.raises(KeyError, match='boom'):
        calibrate(cnn, cnn_batches(1), forward_fn=bad_forward, progress=False)
    assert cnn.training and all(not q.observing and q.enabled for _, q in iter_quantizers(cnn))


def test_calibrated_model_is_close_to_float():
    model = ToyCNN().eval()
    batches = cnn_batches(3)
    ref = [model(b) for b in batches]
    quantize_model(model, QuantConfig(w_bits=8, a_bits=8))
    calibrate(model, batches, progress=False)
    for b, r in zip(batches, ref):
        assert (model(b) - r).norm() / r.norm() < 0.05
