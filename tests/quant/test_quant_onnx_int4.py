"""pack_int4_weights(): 4-bit weights as packed INT4 initialisers read by DequantizeLinear."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ptqat.quant import QuantConfig, calibrate, export_onnx, pack_int4_weights, quantize_model
from quant_toys import ToyCNN, cnn_batches

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
from onnx import numpy_helper  # noqa: E402


def _run(path, x):
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize('w_bits', [4, 3])
def test_pack_int4_same_outputs_smaller_file(tmp_path, w_bits):
    model = ToyCNN().eval()
    # the first conv stays at 8 bits: it keeps its INT8 Q/DQ
    quantize_model(model, QuantConfig(w_bits=w_bits, a_bits=8, overrides={r'^conv1$': dict(w_bits=8)}))
    batches = cnn_batches()
    calibrate(model, batches, progress=False)
    src = export_onnx(model, batches[0], tmp_path / 'int8.onnx', input_names=['img'], dynamic_axes={'img': {0: 'n'}})
    stats = pack_int4_weights(src, tmp_path / 'int4.onnx')
    assert stats == dict(int4=4, int8=1)
    m = onnx.load(tmp_path / 'int4.onnx')
    assert m.opset_import[0].version == 21
    packed = [t for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT4]
    assert len(packed) == 2 * 4  # weight + zero point of each 4-bit layer
    q_inputs = {n.input[0] for n in m.graph.node if n.op_type == 'QuantizeLinear'}
    assert not any(t.name in q_inputs for t in packed)
    for t in packed:
        v = numpy_helper.to_array(t)
        assert v.min() >= -2 ** (w_bits - 1) and v.max() <= 2 ** (w_bits - 1) - 1
    for x in (batches[1], torch.randn(2, 3, 8, 8) * 3):
        a, b = _run(str(tmp_path / 'int8.onnx'), x), _run(str(tmp_path / 'int4.onnx'), x)
        assert np.array_equal(a, b)
    # float32 weights -> 4 bits: the packed initialisers are 1/8 of the float ones
    float_bytes = sum(numpy_helper.to_array(t).nbytes for t in onnx.load(src).graph.initializer
                      if t.data_type == onnx.TensorProto.FLOAT and t.name.endswith('weight'))
    int4_bytes = sum(len(t.raw_data) for t in packed if not t.name.endswith('zero_point'))
    assert int4_bytes <= float_bytes / 8 + 4
    assert os.path.getsize(tmp_path / 'int4.onnx') < os.path.getsize(src)


def test_pack_int4_leaves_8bit_weights(tmp_path):
    model = ToyCNN().eval()
    quantize_model(model, QuantConfig(w_bits=8, a_bits=8))
    batches = cnn_batches()
    calibrate(model, batches, progress=False)
    src = export_onnx(model, batches[0], tmp_path / 'int8.onnx')
    assert pack_int4_weights(src, tmp_path / 'int4.onnx') == dict(int4=0, int8=5)
