"""export_onnx(): Q/DQ structure for TensorRT and numerical agreement with onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ptqat.quant import LSQQuantizer, QuantConfig, calibrate, export_onnx, iter_quantizers, quantize_model
from quant_toys import ToyCNN, ToyTransformer, cnn_batches, seq_batches

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
from onnx import numpy_helper  # noqa: E402


def _graph_values(model):
    """name -> numpy value for initializers and Constant outputs."""
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Constant':
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _qdq_pairs(model):
    """[(QuantizeLinear node, DequantizeLinear node)] connected Q -> DQ."""
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    pairs = []
    for node in model.graph.node:
        if node.op_type == 'QuantizeLinear':
            dq = [c for c in consumers.get(node.output[0], []) if c.op_type == 'DequantizeLinear']
            assert len(dq) == 1
            pairs.append((node, dq[0]))
    return pairs


def _axis(node):
    for a in node.attribute:
        if a.name == 'axis':
            return a.i
    return None


def _run_ort(path, inputs):
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    feed = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feed)


def _check_against_torch(model, path, inputs, label):
    with torch.no_grad():
        ref = model(*inputs)
    out = _run_ort(path, inputs)[0]
    diff = float(np.abs(out - ref.numpy()).max())
    print(f'\n[onnx] {label}: max |onnxruntime - pytorch fake-quant| = {diff:.3e} '
          f'(output max |y| = {float(ref.abs().max()):.3f})')
    assert diff <= 1e-5
    return diff


@pytest.mark.parametrize('a_bits', [8, 4])
def test_cnn_export_structure_and_numerics(tmp_path, a_bits):
    model = ToyCNN().eval()
    quantize_model(model, QuantConfig(w_bits=4, a_bits=a_bits))
    batches = cnn_batches()
    calibrate(model, batches, progress=False)
    weights_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    path = export_onnx(model, batches[0], tmp_path / 'cnn.onnx', input_names=['img'], output_names=['logits'],
                       dynamic_axes={'img': {0: 'n'}, 'logits': {0: 'n'}})
    assert path == str(tmp_path / 'cnn.onnx')
    # state restored: weights (temporarily baked during export), train mode, quantizer flags
    assert all(torch.equal(p, weights_before[n]) for n, p in model.named_parameters())
    assert model.training and all(not q.export_mode for _, q in iter_quantizers(model))
    model.eval()

    m = onnx.load(path)
    onnx.checker.check_model(m)
    values = _graph_values(m)
    pairs = _qdq_pairs(m)
    assert len(pairs) == 10  # weight + input of 5 layers
    weight_pairs = [(q, dq) for q, dq in pairs if q.input[0] in {i.name for i in m.graph.initializer}]
    act_pairs = [(q, dq) for q, dq in pairs if (q, dq) not in weight_pairs]
    assert len(weight_pairs) == 5 and len(act_pairs) == 5
    for q, dq in pairs:
        scale, zp = values[q.input[1]], values[q.input[2]]
        assert zp.dtype == np.int8 and not zp.any() and (scale > 0).all()
        assert dq.input[1] == q.input[1] and dq.input[2] == q.input[2]
    axes = sorted(_axis(q) for q, _ in weight_pairs)
    assert axes == [0, 0, 0, 0, 1]  # ConvTranspose weight on axis 1
    for q, _ in weight_pairs:
        w, scale = values[q.input[0]], values[q.input[1]]
        ax = _axis(q)
        assert scale.shape == (w.shape[ax],)
        shape = [1] * w.ndim
        shape[ax] = -1
        k = w / scale.reshape(shape)
        r = np.round(k)
        assert np.allclose(k, r, atol=1e-3) and r.min() >= -8 and r.max() <= 7  # the 4-bit grid
    for q, _ in act_pairs:
        assert values[q.input[1]].shape == () and _axis(q) in (None, 1)  # per-tensor scalar scale
    clips = [n for n in m.graph.node if n.op_type == 'Clip']
    assert len(clips) == (5 if a_bits == 4 else 0)

    _check_against_torch(model, path, [batches[1]], f'ToyCNN W4A{a_bits}')
    _check_against_torch(model, path, [torch.randn(7, 3, 8, 8) * 3], f'ToyCNN W4A{a_bits} (dynamic batch, x3)')


def test_transformer_export(tmp_path):
    model = ToyTransformer().eval()
    quantize_model(model, QuantConfig(w_bits=4, a_bits=8))
    batches = seq_batches()
    calibrate(model, batches, progress=False)
    path = export_onnx(model, (batches[0],), tmp_path / 'tr.onnx')
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count('QuantizeLinear') == ops.count('DequantizeLinear') >= 12
    _check_against_torch(model, path, [batches[1]], 'ToyTransformer W4A8 (MHA, QuantMatMul)')


def test_disabled_quantizers_export_as_identity(tmp_path, qcnn):
    model, batches = qcnn
    for _, q in iter_quantizers(model):
        q.enabled = False
    m = onnx.load(export_onnx(model, batches[0], tmp_path / 'fp.onnx'))
    assert not any(n.op_type in ('QuantizeLinear', 'DequantizeLinear') for n in m.graph.node)
    _check_against_torch(model, str(tmp_path / 'fp.onnx'), [batches[0]], 'ToyCNN, quantizers disabled')


def test_export_errors(tmp_path, qcnn, cnn):
    model, batches = qcnn
    with pytest.raises(ValueError, match='opset must be an integer >= 13.*got 11'):
        export_onnx(model, batches[0], tmp_path / 'x.onnx', opset=11)
    class Broken(LSQQuantizer):
        def prepare_export(self, weight=None):
            raise RuntimeError('cannot be exported')

    broken = Broken(8)
    broken.init_step_size(batches[0])
    model.conv1.input_quantizer = broken
    with pytest.raises(RuntimeError, match="'conv1.input_quantizer'.*cannot be exported"):
        export_onnx(model, batches[0], tmp_path / 'x.onnx')
    assert all(not q.export_mode for _, q in iter_quantizers(model))
    quantize_model(cnn)
    with pytest.raises(RuntimeError, match='not initialised'):
        export_onnx(cnn, batches[0], tmp_path / 'y.onnx')


def test_unsigned_low_bit_activation_export_is_exact(tmp_path, qcnn):
    model, batches = qcnn
    q = LSQQuantizer(4, signed=False)
    q.init_step_size(torch.relu(batches[0]), 'mse')
    model.conv1.input_quantizer = q
    path = export_onnx(model, batches[0], tmp_path / 'u4.onnx')
    _check_against_torch(model, path, [batches[2]], 'ToyCNN, unsigned 4-bit input')
