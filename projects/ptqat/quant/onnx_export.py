"""ONNX export with explicit QuantizeLinear/DequantizeLinear (Q/DQ) pairs for TensorRT."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn

from .layers import QuantMultiheadAttention, iter_quantizers, quantized_layers

__all__ = ['export_mode', 'export_onnx', 'pack_int4_weights']


@contextmanager
def export_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Switch every enabled quantizer of ``model`` to its ONNX export form and the model to
    eval mode; restore both on exit. Weight quantizers get their fake-quantized weight baked
    as a constant (see :meth:`LSQQuantizer.prepare_export`)."""
    modes = [(m, m.training) for m in model.modules()]
    weight_of = {}
    for _, layer in quantized_layers(model):
        for q, w in layer.weight_quantizer_pairs():
            weight_of[id(q)] = w
    prepared = []
    try:
        model.eval()
        for name, q in iter_quantizers(model):
            # an uninitialised quantizer is left alone: it raises if the traced forward uses it
            # (e.g. the key quantizer of a self-attention layer is never used)
            if q.enabled and not q.observing and q.is_initialized:
                try:
                    q.prepare_export(weight_of.get(id(q)))
                except RuntimeError as exc:
                    raise RuntimeError(f'quantizer {name!r}: {exc}') from None
                prepared.append(q)
        yield model
    finally:
        for q in reversed(prepared):  # reverse order: correct even for tied weights
            q.finish_export()
        for m, training in modes:
            m.training = training


def export_onnx(model: nn.Module, example_inputs: Union[torch.Tensor, Sequence[Any]], path: Union[str, os.PathLike],
                *, opset: Optional[int] = None, input_names: Optional[Sequence[str]] = None,
                output_names: Optional[Sequence[str]] = None,
                dynamic_axes: Optional[Mapping[str, Union[Mapping[int, str], Sequence[int]]]] = None) -> str:
    """Export a quantized (calibrated) model to ONNX with TensorRT-style explicit quantization.

    Every enabled quantizer becomes a symmetric ``QuantizeLinear -> DequantizeLinear`` pair
    with an INT8 zero point of 0 and the LSQ step as scale:

    * weights: per output channel, ``axis=0`` for Conv/Linear/attention projections and
      ``axis=1`` for ConvTranspose (its weight is ``(C_in, C_out/groups, kH, kW)``; TensorRT
      quantizes deconvolution kernels along the output-channel axis, which is axis 1) --
      or per tensor (scalar scale) when the layer was quantized per tensor;
    * activations: per tensor (scalar scale), as TensorRT requires.

    Bit widths below 8 are exported exactly with INT8 Q/DQ, because TensorRT has no INT4
    convolution: **weights** are fake-quantized to their (e.g. 4-bit) grid before export and
    the grid values are stored as the float constant in front of an INT8 Q/DQ pair with the
    same scale (the values land on integers in ``[-8, 7]``, so Q/DQ reproduces them
    exactly); **activations** with ``a_bits < 8`` get a ``Clip(-Qn*s, Qp*s)`` in front of the
    INT8 Q/DQ pair, which reproduces the narrower grid exactly. Unsigned 8-bit quantizers
    cannot be expressed as signed INT8 and raise RuntimeError. Disabled quantizers export as
    identity; an enabled uninitialised quantizer raises RuntimeError if the forward uses it.

    Uses the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``; opset >= 13 is
    required for per-axis Q/DQ, >= 14 for a :class:`QuantMultiheadAttention`, whose
    ``need_weights=False`` path is ``scaled_dot_product_attention``), then runs
    ``onnx.checker.check_model``. The model's train/eval mode and quantizer state are
    restored.

    Args:
        model: the quantized model.
        example_inputs: a tensor or a tuple of positional inputs.
        path: output ``.onnx`` file.
        opset: ONNX opset; default 13, or 14 when the model has a ``QuantMultiheadAttention``.
        input_names, output_names, dynamic_axes: as for ``torch.onnx.export``.
    Returns:
        ``path`` as a string.
    """
    attention = [n for n, m in quantized_layers(model) if isinstance(m, QuantMultiheadAttention)]
    if opset is None:
        opset = 14 if attention else 13
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f'opset must be an integer >= 13 (per-channel QuantizeLinear), got {opset!r}')
    if attention and opset < 14:
        raise ValueError(f'opset must be >= 14 for quantized attention layers ({attention[0]!r}: '
                         f'scaled_dot_product_attention), got {opset!r}')
    import onnx  # a dependency of the plugin; imported lazily to keep `import ptqat.quant` light

    args = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    path = os.fspath(path)
    kwargs: Dict[str, Any] = dict(opset_version=opset, input_names=list(input_names) if input_names else None,
                                  output_names=list(output_names) if output_names else None,
                                  dynamic_axes=dict(dynamic_axes) if dynamic_axes else None, dynamo=False,
                                  do_constant_folding=True)
    with export_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # the TorchScript exporter is deprecated
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(model, args, path, **kwargs)
    onnx.checker.check_model(path)
    return path


def _pack_int4(q) -> bytes:
    """Signed 4-bit values (numpy ints in ``[-8, 7]``, C order) packed two per byte, the first
    element in the low nibble (the ONNX INT4 layout); an odd count is padded with 0."""
    import numpy as np
    flat = (np.asarray(q, dtype=np.int8).reshape(-1) & 0x0F).astype(np.uint8)
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.uint8)])
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()


def _drop_unused(graph) -> None:
    """Remove initialisers and Constant nodes that no node or graph output reads."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == 'Constant' and n.output[0] not in used]:
        graph.node.remove(node)
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def pack_int4_weights(src: Union[str, os.PathLike], dst: Union[str, os.PathLike]) -> Dict[str, int]:
    """Rewrite a Q/DQ ONNX file (from :func:`export_onnx`) so that every weight on a 4-bit grid
    is a packed INT4 initialiser read by ``DequantizeLinear`` (opset 21).

    A weight is an initialiser ``W`` feeding ``QuantizeLinear(W, s, 0) -> DequantizeLinear``;
    when every value of ``round(W / s)`` lies in ``[-8, 7]`` (a weight quantizer with
    ``w_bits <= 4``; ``W`` already holds the grid values, so the rounding is exact), the
    QuantizeLinear is dropped and the DequantizeLinear reads the INT4 tensor ``round(W / s)``
    with an INT4 zero point 0 and the same scale and axis. Wider weights keep their INT8 Q/DQ.
    The graph is first converted to opset 21 (``onnx.version_converter``), the first opset whose
    DequantizeLinear takes INT4. The outputs are unchanged: DQ(INT4 q) = q * s = W.

    Returns:
        ``{'int4': number of weights packed, 'int8': Q/DQ weights left at 8 bits}``.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper, version_converter

    model = onnx.load(os.fspath(src))
    if model.opset_import[0].version < 21:
        model = version_converter.convert_version(model, 21)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    # the TorchScript exporter gives scales and zero points as Constant nodes
    consts = {n.output[0]: n for n in graph.node if n.op_type == 'Constant' and n.attribute
              and n.attribute[0].name == 'value'}

    def value_of(name: str):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:
            return numpy_helper.to_array(consts[name].attribute[0].t)
        return None
    consumers: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    stats = dict(int4=0, int8=0)
    drop_nodes, drop_inits, new_inits = [], set(), []
    for node in graph.node:
        if node.op_type != 'QuantizeLinear' or node.input[0] not in inits or value_of(node.input[1]) is None:
            continue
        readers = consumers.get(node.output[0], [])
        if not readers or any(r.op_type != 'DequantizeLinear' for r in readers):
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
        s = value_of(node.input[1]).astype(np.float64)
        axis = next((a.i for a in node.attribute if a.name == 'axis'), 1)
        if s.ndim == 1 and s.size > 1:
            shape = [1] * w.ndim
            shape[axis] = s.size
            q = np.round(w / s.reshape(shape))
        else:
            q = np.round(w / s)
        if q.min() < -8 or q.max() > 7:
            stats['int8'] += 1
            continue
        qname = node.input[0] + '_int4'
        zname = node.input[0] + '_int4_zero_point'
        new_inits.append(helper.make_tensor(qname, TensorProto.INT4, list(w.shape), _pack_int4(q), raw=True))
        new_inits.append(helper.make_tensor(zname, TensorProto.INT4, list(s.shape), _pack_int4(np.zeros(s.shape)),
                                            raw=True))
        for dq in readers:
            dq.input[0] = qname
            if len(dq.input) > 2:
                dq.input[2] = zname
            else:
                dq.input.append(zname)
        drop_nodes.append(node)
        if len(consumers.get(node.input[0], [])) == 1:
            drop_inits.add(node.input[0])
        stats['int4'] += 1
    for node in drop_nodes:
        graph.node.remove(node)
    kept = [t for t in graph.initializer if t.name not in drop_inits]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    _drop_unused(graph)
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(dst))
    return stats
