"""ONNX export with explicit QuantizeLinear/DequantizeLinear (Q/DQ) pairs for TensorRT."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn

from .layers import QuantMultiheadAttention, iter_quantizers, quantized_layers

__all__ = ['export_mode', 'export_onnx']


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
