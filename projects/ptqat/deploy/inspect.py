"""Check where the Q/DQ nodes of an exported graph sit and which scales they carry."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
from torch import nn

from ..quant import QuantAdd, quantized_layers

__all__ = ['qdq_report', 'onnx_scope_name']

#: ONNX ops that compute with a quantized layer's weight
COMPUTE_OPS = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')
#: ops between a DequantizeLinear and the compute node that keep the values (reshapes, transposes)
PASS_THROUGH = ('Transpose', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity')


def onnx_scope_name(node_name: str) -> str:
    """Module path of a TorchScript-exported node: ``/a/b/b.0/conv/Conv`` -> ``a.b.0.conv``
    (a component that extends the previous one by ``.k`` is a child of a container)."""
    comps: List[str] = []
    for c in node_name.strip('/').split('/')[:-1]:
        if comps and c.startswith(comps[-1] + '.'):
            comps[-1] = c
        else:
            comps.append(c)
    return '.'.join(comps)


def _values(model) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == 'Constant' and n.attribute and n.attribute[0].name == 'value':
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def qdq_report(onnx_path: str, detector: nn.Module) -> List[Dict[str, object]]:
    """One row per quantized layer of ``detector``: the graph's compute nodes of that layer and
    whether their activation and weight inputs come from DequantizeLinear with the layer's step
    sizes.

    Returns:
        rows ``dict(layer, nodes, input_scale_ok, weight_scale_ok, input_qdq, weight_qdq,
        residual_qdq, max_scale_err)``; ``input_qdq`` / ``weight_qdq``: every compute node of the
        layer reads that input through a DequantizeLinear (a layer without an input quantizer /
        without a weight: None); ``residual_qdq``: the same for the second input of a
        :class:`~ptqat.quant.QuantAdd` (its compute node is the ``Add``); ``input_scale_ok``
        covers both activation inputs.
    """
    import onnx
    model = onnx.load(onnx_path)
    values = _values(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    layers = dict(quantized_layers(detector))

    def dq_of(name: str) -> Optional[object]:
        node = producer.get(name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = producer.get(node.input[0])
        return node if node is not None and node.op_type == 'DequantizeLinear' else None

    by_layer: Dict[str, list] = {n: [] for n in layers}
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS + ('Add',):
            continue
        scope = onnx_scope_name(node.name)
        hits = [n for n in layers if n == scope or n.endswith('.' + scope)]
        # a QuantAdd computes with Add, every other layer with COMPUTE_OPS
        if len(hits) == 1 and (node.op_type == 'Add') == isinstance(layers[hits[0]], QuantAdd):
            by_layer[hits[0]].append(node)
    rows = []
    for name, layer in layers.items():
        nodes = by_layer[name]
        iq = getattr(layer, 'input_quantizer', None)
        iq = iq if iq is not None and iq.enabled else None
        rq = getattr(layer, 'residual_quantizer', None)   # QuantAdd: the Add's second input
        rq = rq if rq is not None and rq.enabled else None
        wq = layer.weight_quantizer_pairs()[0][0] if layer.weight_quantizer_pairs() else None
        row: Dict[str, object] = dict(layer=name, nodes=[n.name for n in nodes], max_scale_err=0.0)
        in_ok, w_ok, in_qdq, w_qdq, r_qdq = True, True, True, True, True
        for node in nodes:
            for q, slot in ((iq, 0), (rq, 1)):
                if q is None:
                    continue
                dq = dq_of(node.input[slot])
                if dq is None:
                    in_ok = False
                    if slot == 0:
                        in_qdq = False
                    else:
                        r_qdq = False
                else:
                    err = float(np.max(np.abs(values[dq.input[1]].reshape(-1)
                                              - q.effective_step_size().detach().numpy().reshape(-1))))
                    row['max_scale_err'] = max(row['max_scale_err'], err)
                    in_ok &= err <= 1e-7 * float(q.effective_step_size().max())
            if wq is not None and wq.enabled:
                dq = dq_of(node.input[1])
                if dq is None:
                    w_qdq = w_ok = False
                else:
                    s_ref = wq.effective_step_size().detach().numpy().reshape(-1)
                    err = float(np.max(np.abs(values[dq.input[1]].reshape(-1) - s_ref)))
                    row['max_scale_err'] = max(row['max_scale_err'], err)
                    w_ok &= err <= 1e-7 * float(s_ref.max())
        row.update(input_qdq=in_qdq if iq is not None else None, weight_qdq=w_qdq if wq is not None else None,
                   input_scale_ok=in_ok, weight_scale_ok=w_ok, residual_qdq=r_qdq if rq is not None else None)
        rows.append(row)
    return rows
