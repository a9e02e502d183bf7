"""Activation sign: a_signed=True|False|'auto' (issue 9 item 8)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from ptqat.quant import LSQQuantizer, QuantConfig, calibrate, export_onnx, quantize_model
from ptqat.quant.lsq import _kth_percentile

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')


def _relu_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1),
                         nn.Flatten(), nn.Linear(4 * 36, 5))


def _batches(n=3):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, 3, 6, 6, generator=g) for _ in range(n)]


@pytest.mark.parametrize('value', [1, 0, 'unsigned', None])
def test_bad_a_signed_is_refused(value):
    with pytest.raises(ValueError, match=r"a_signed must be True, False or 'auto', got"):
        QuantConfig(a_signed=value)
    with pytest.raises(ValueError, match=r"overrides\['fc'\]\.a_signed must be True, False or 'auto'"):
        QuantConfig(overrides={'fc': dict(a_signed=value)})


def test_signed_stays_the_default():
    model = _relu_net()
    quantize_model(model, QuantConfig(a_bits=8))
    calibrate(model, _batches(), progress=False)
    assert all(m.input_quantizer.signed and not m.input_quantizer.auto_sign for m in (model[0], model[2], model[4]))
    assert 'auto_signed' not in ''.join(model.state_dict())


@pytest.mark.parametrize('a_init', ['minmax', 'lsq', 'percentile', 'mse'])
def test_auto_picks_unsigned_after_relu(a_init):
    model = _relu_net()
    quantize_model(model, QuantConfig(a_bits=8, a_signed='auto', a_init=a_init))
    batches = _batches()
    seen = {}
    hook = model[2].register_forward_pre_hook(lambda m, a: seen.setdefault('x', []).append(a[0]))
    calibrate(model, batches, progress=False)
    hook.remove()
    first, after_relu, fc = (model[i].input_quantizer for i in (0, 2, 4))
    assert first.signed and (first.qn, first.qp) == (128, 127)      # raw input has negatives
    assert not after_relu.signed and (after_relu.qn, after_relu.qp) == (0, 255)
    assert fc.signed                                                   # conv output: negatives
    # the unsigned step is what an unsigned quantizer calibrated on the same data gets
    ref = LSQQuantizer(8, signed=False, init_method=a_init)
    ref.start_observation()
    for x in seen['x']:
        ref(x)
    ref.finish_observation()
    torch.testing.assert_close(after_relu.step_size, ref.step_size, rtol=1e-6, atol=0)
    if a_init == 'minmax':
        m = torch.cat(seen['x']).max()
        assert after_relu.step_size.item() == pytest.approx(m.item() / 255)


def test_a_signed_false_clips_negative_inputs():
    model = _relu_net()
    quantize_model(model, QuantConfig(a_bits=8, a_signed=False, overrides={r'^4$': dict(a_signed=True)}))
    calibrate(model, _batches(), progress=False)
    q = model[0].input_quantizer
    assert not q.signed and not q.auto_sign and model[4].input_quantizer.signed
    x = torch.tensor([-1.0, 0.0, 2.0 * q.step_size.item()])
    assert q(x).tolist() == pytest.approx([0.0, 0.0, 2.0 * q.step_size.item()])


def test_auto_decision_survives_state_dict_round_trip():
    model = _relu_net()
    quantize_model(model, QuantConfig(a_bits=4, a_signed='auto'))
    calibrate(model, _batches(), progress=False)
    sd = model.state_dict()
    assert sd['2.input_quantizer.auto_signed'].item() is False and sd['0.input_quantizer.auto_signed'].item()
    fresh = _relu_net()
    quantize_model(fresh, QuantConfig(a_bits=4, a_signed='auto'))
    assert fresh[2].input_quantizer.signed  # undecided: signed
    fresh.load_state_dict(sd)
    assert not fresh[2].input_quantizer.signed and fresh[2].input_quantizer.qp == 15
    x = _batches(1)[0]
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_auto_sign_reduction_across_processes():
    """Another process saw a negative value: every process ends signed."""
    seen = []

    def reduce_fn(t, op):
        seen.append(op)
        return torch.maximum(t, torch.ones_like(t)) if len(seen) == 3 else t

    q = LSQQuantizer(8, init_method='lsq')
    q.enable_auto_sign()
    q.start_observation()
    q(torch.rand(100))
    q.finish_observation(reduce_fn)
    assert seen == ['sum', 'sum', 'max'] and q.signed and bool(q.auto_signed)


def test_auto_init_step_size_decides_from_the_tensor():
    q = LSQQuantizer(8, init_method='percentile')
    q.enable_auto_sign()
    x = torch.rand(1000)
    q.init_step_size(x)
    assert not q.signed
    assert q.step_size.item() == pytest.approx((_kth_percentile(x.reshape(1, -1), 99.99) / 255).item())
    q.init_step_size(x - 0.5)
    assert q.signed


def _max_diff(model, path, x):
    """Max |onnxruntime - torch| with onnxruntime's graph optimisations off: its Q/DQ fusion
    (QLinearConv) re-quantizes a conv output that our graph keeps in float, which differs by
    ~1e-3 for signed and unsigned grids alike; the graph itself is what must be exact."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    return float(np.abs(out - ref).max())


@pytest.mark.parametrize('a_bits', [8, 4])
@pytest.mark.parametrize('a_signed', ['auto', False])
def test_unsigned_export_is_exact(tmp_path, a_bits, a_signed):
    model = _relu_net()
    quantize_model(model, QuantConfig(w_bits=4, a_bits=a_bits, a_signed=a_signed))
    batches = _batches()
    calibrate(model, batches, progress=False)
    path = export_onnx(model, batches[0], tmp_path / 'u.onnx')
    graph = onnx.load(path).graph
    zero_points = {i.name: i.data_type for i in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant':
            zero_points[node.output[0]] = node.attribute[0].t.data_type
    q_types = sorted({zero_points.get(n.input[2]) for n in graph.node if n.op_type == 'QuantizeLinear'
                      if len(n.input) > 2})
    uint8, int8 = onnx.TensorProto.UINT8, onnx.TensorProto.INT8
    assert q_types == (sorted([int8, uint8]) if a_bits == 8 else [int8])
    for x in batches + [3 * batches[0]]:
        assert _max_diff(model, path, x) <= 1e-5
