"""measure_discrepancy(): local/cumulative modes, metrics, pass counting, error handling."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ptqat.quant import (METRICS, QuantConfig, calibrate, discrepancy_per_sample, iter_quantizers,
                         measure_discrepancy, quantize_model, quantized_layers)
from quant_toys import set_all_quantizers


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _brute_force_local(model, batches, metric):
    """One full pass per layer with only that layer's own quantizers enabled."""
    result = {}
    layers = quantized_layers(model)
    for name, layer in layers:
        sums, count = 0.0, 0
        for batch in batches:
            captured = {}
            handle = layer.register_forward_hook(lambda m, a, o: captured.setdefault('y', []).append(_first(o)))
            set_all_quantizers(model, False)
            with torch.no_grad():
                model(batch)
                fp = captured.pop('y')
                for q in layer.own_quantizers():
                    q.enabled = True
                model(batch)
                qo = captured.pop('y')
            handle.remove()
            for a, b in zip(qo, fp):
                d = discrepancy_per_sample(a, b, metric)
                sums += d.sum().item()
                count += d.numel()
        result[name] = sums / count
    set_all_quantizers(model, True)
    return result


@pytest.mark.parametrize('metric', METRICS)
@pytest.mark.parametrize('which', ['qcnn', 'qtransformer'])
def test_local_equals_brute_force(which, metric, request):
    model, batches = request.getfixturevalue(which)
    hooks = measure_discrepancy(model, batches, metric=metric, mode='local', progress=False)
    brute = _brute_force_local(model, batches, metric)
    assert list(hooks) == list(brute) == [n for n, _ in quantized_layers(model)]
    for name in brute:
        assert hooks[name] == pytest.approx(brute[name], rel=1e-9, abs=1e-12), name
    assert all(v > 0 for v in hooks.values())


@pytest.mark.parametrize('metric', METRICS)
def test_cumulative_last_layer_equals_full_model_error(qcnn, metric):
    model, batches = qcnn
    d = measure_discrepancy(model, batches, metric=metric, mode='cumulative', progress=False)
    with torch.no_grad():
        q_out = [model(b) for b in batches]
        set_all_quantizers(model, False)
        fp_out = [model(b) for b in batches]
        set_all_quantizers(model, True)
    per_sample = torch.cat([discrepancy_per_sample(a, b, metric) for a, b in zip(q_out, fp_out)])
    assert d['fc'] == pytest.approx(per_sample.mean().item(), rel=1e-9)


def test_cumulative_first_layer_equals_local(qcnn):
    model, batches = qcnn
    loc = measure_discrepancy(model, batches, mode='local', progress=False)
    cum = measure_discrepancy(model, batches, mode='cumulative', progress=False)
    assert cum['conv1'] == pytest.approx(loc['conv1'], rel=1e-9)
    assert cum['conv2'] != pytest.approx(loc['conv2'], rel=1e-3)  # conv2's input differs: upstream error


@pytest.mark.parametrize('mode, passes', [('local', 1), ('cumulative', 2)])
def test_at_most_two_root_passes_per_batch(qtransformer, mode, passes):
    model, batches = qtransformer
    calls = []
    h = model.register_forward_pre_hook(lambda m, a: calls.append(1))
    measure_discrepancy(model, batches, mode=mode, progress=False)
    h.remove()
    assert len(calls) == passes * len(batches)


def test_metric_values():
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    xq = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert discrepancy_per_sample(xq, x, 'l2').tolist() == pytest.approx([0.0, 2 ** 0.5])
    assert discrepancy_per_sample(xq, x, 'mse').tolist() == pytest.approx([0.0, 1.0])
    assert discrepancy_per_sample(xq, x, 'relative').tolist() == pytest.approx([0.0, 2 ** 0.5])
    assert discrepancy_per_sample(xq, x, 'cosine').tolist() == pytest.approx([0.0, 1.0])
    zero = torch.zeros(2, 3)
    for metric in METRICS:
        assert discrepancy_per_sample(zero, zero, metric).tolist() == [0.0, 0.0]


def test_batches_weighted_by_samples():
    model = nn.Sequential(nn.Linear(4, 4))
    quantize_model(model, QuantConfig(w_bits=2))
    batches = [torch.randn(1, 4), torch.randn(7, 4)]
    calibrate(model, batches, progress=False)
    d = measure_discrepancy(model, batches, progress=False)
    with torch.no_grad():
        allx = torch.cat(batches)
        q = model(allx)
        set_all_quantizers(model, False)
        f = model(allx)
    assert d['0'] == pytest.approx((q - f).norm(dim=1).mean().item(), rel=1e-6)


def test_restores_flags_and_mode_even_on_exception(qcnn):
    model, batches = qcnn
    model.train()
    model.fc.input_quantizer.enabled = False
    before = {n: q.enabled for n, q in iter_quantizers(model)}

    def bad(m, b):
        m(b)
        raise KeyError('boom')

    for mode in ('local', 'cumulative'):
        with pytest.raises(KeyError, match='boom'):
            measure_discrepancy(model, batches, forward_fn=bad, mode=mode, progress=False)
        assert {n: q.enabled for n, q in iter_quantizers(model)} == before
        assert model.training and model.bn1.training
        assert all(not m._forward_hooks for m in model.modules())
    measure_discrepancy(model, batches, progress=False)
    assert {n: q.enabled for n, q in iter_quantizers(model)} == before and model.training


def test_disabled_quantizer_is_respected_in_local_mode(qcnn):
    model, batches = qcnn
    full = measure_discrepancy(model, batches, progress=False)
    model.fc.input_quantizer.enabled = False
    part = measure_discrepancy(model, batches, progress=False)
    assert part['fc'] < full['fc'] and part['conv1'] == full['conv1']


def test_reduce_fn_receives_sums_and_counts(qcnn):
    model, batches = qcnn
    seen = []

    def reduce_fn(t, op):
        seen.append((tuple(t.shape), op))
        return t * 2  # like two identical ranks

    d2 = measure_discrepancy(model, batches, progress=False, reduce_fn=reduce_fn)
    d1 = measure_discrepancy(model, batches, progress=False)
    assert seen == [((2, 5), 'sum')] and d1 == pytest.approx(d2)


def test_never_executed_layer_excluded_with_warning():
    model = nn.ModuleDict({'a': nn.Linear(3, 3), 'b': nn.Linear(3, 3)})
    quantize_model(model)
    for layer in model.values():
        layer.init_weight_quantizers()
        layer.input_quantizer.init_step_size(torch.randn(4, 3))
    for mode in ('local', 'cumulative'):
        with pytest.warns(RuntimeWarning, match=r"never ran and are excluded: \['b'\]"):
            d = measure_discrepancy(model, [torch.randn(2, 3)], forward_fn=lambda m, x: m['a'](x), mode=mode,
                                    progress=False)
        assert list(d) == ['a']
    with pytest.raises(RuntimeError, match='no quantized layer ran'):
        measure_discrepancy(model, [torch.randn(2, 3)], forward_fn=lambda m, x: x, progress=False)


def test_bad_arguments(qcnn, cnn):
    model, batches = qcnn
    with pytest.raises(ValueError, match=r"unknown metric 'l1'; allowed: l2, rms, mse, relative, cosine"):
        measure_discrepancy(model, batches, metric='l1')
    with pytest.raises(ValueError, match=r"unknown mode 'global'; allowed: local, cumulative"):
        measure_discrepancy(model, batches, mode='global')
    with pytest.raises(ValueError, match='no quantized layers'):
        measure_discrepancy(cnn, batches)


def test_uninitialised_quantizer_raises(cnn):
    quantize_model(cnn)
    with pytest.raises(RuntimeError, match='not initialised'):
        measure_discrepancy(cnn, [torch.randn(2, 3, 8, 8)], progress=False)
    assert all(q.enabled for _, q in iter_quantizers(cnn))
