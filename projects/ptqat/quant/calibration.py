"""Post-training quantization: step-size calibration."""
from __future__ import annotations

import warnings
from typing import Any, Iterable, List, Optional

import torch
import torch.nn as nn

from ._common import ForwardFn, default_forward, preserved_state, progress_iter
from .layers import quantized_layers
from .lsq import ReduceFn

__all__ = ['calibrate']


def calibrate(model: nn.Module, batches: Iterable[Any], forward_fn: Optional[ForwardFn] = None, *,
              progress: bool = True, reduce_fn: Optional[ReduceFn] = None) -> None:
    """PTQ calibration of every quantizer of every quantized layer of ``model``.

    1. Every weight step size is initialised from its weight (the quantizer's
       ``init_method``, ``'mse'`` by default), per output channel.
    2. If any layer quantizes activations, the batches are run through the model in eval
       mode under ``torch.no_grad()``, with the (now initialised) weight quantizers active
       and the activation quantizers in observe mode (they see -- and pass through
       unchanged -- the float activations of the weight-quantized network and accumulate
       statistics, see :meth:`LSQQuantizer.start_observation`); then each activation step
       size is set once from its statistics.

    Args:
        model: a model processed by ``quantize_model``.
        batches: an iterable of batches (consumed once; not consumed at all when no layer
            quantizes activations).
        forward_fn: ``forward_fn(model, batch)``; default ``model(batch)`` for a tensor,
            ``model(*batch)`` for a tuple/list, ``model(**batch)`` for a dict.
        progress: show a tqdm progress bar on stderr.
        reduce_fn: ``reduce_fn(tensor, op) -> tensor`` with ``op`` in ``{'sum', 'max'}``,
            applied to each accumulated statistic before the step is set, in the same order
            on every process. For DDP::

                def reduce_fn(t, op):
                    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == 'sum' else dist.ReduceOp.MAX)
                    return t

            Every rank must call ``calibrate`` (with possibly zero local batches). A
            per-channel activation quantizer created without ``num_channels`` sizes its
            statistics on first use; one that sees no data on some rank cannot take part in
            the reduction, so give such quantizers ``num_channels`` under DDP (the quantizers
            that ``quantize_model`` creates for activations are per tensor, which is always safe).

    An activation quantizer that observed nothing (its layer never ran, or, in
    ``QuantMultiheadAttention``, a key/value quantizer whose tensor is the query) stays
    uninitialised; a warning names the layers none of whose activation quantizers observed
    anything. The train/eval mode of every module and the quantizer flags are restored.

    Raises:
        ValueError: no quantized layers, or ``batches`` is empty while activations need
            calibration.
    """
    layers = quantized_layers(model)
    if not layers:
        raise ValueError('model has no quantized layers; call quantize_model(model, config) first')
    forward_fn = forward_fn or default_forward
    with preserved_state(model), torch.no_grad():
        for _, layer in layers:
            layer.init_weight_quantizers()
        # a quantizer shared by several layers (QuantConfig.share_input_quantizers) is listed
        # under its first layer only: it observes once per reader and is finished once
        seen: set = set()
        act = []
        for name, layer in layers:
            qs = [q for q in layer.activation_quantizers() if id(q) not in seen]
            seen.update(id(q) for q in qs)
            act.append((name, qs))
        if not any(qs for _, qs in act):
            return
        model.eval()
        for _, qs in act:
            for q in qs:
                q.start_observation()
        n = 0
        for batch in progress_iter(batches, 'ptqat calibrate', progress):
            forward_fn(model, batch)
            n += 1
        if n == 0 and reduce_fn is None:
            raise ValueError('calibrate: `batches` yielded no batch')
        silent: List[str] = []
        for name, qs in act:
            results = [q.finish_observation(reduce_fn) for q in qs]
            if qs and not any(results):
                silent.append(name)
        if silent:
            warnings.warn(f'calibrate: these quantized layers never ran, their activation step sizes stay '
                          f'uninitialised: {silent}', RuntimeWarning, stacklevel=2)
