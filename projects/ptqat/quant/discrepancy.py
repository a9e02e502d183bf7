"""Per-layer quantization discrepancy ``Dis(X_Q, X)`` (PTQAT's selection criterion)."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ._common import ForwardFn, default_forward, preserved_state, progress_iter
from .layers import QuantModule, iter_quantizers, quantized_layers
from .lsq import ReduceFn

__all__ = ['METRICS', 'MODES', 'discrepancy_per_sample', 'measure_discrepancy']

METRICS = ('l2', 'rms', 'mse', 'relative', 'cosine')
MODES = ('local', 'cumulative')
_TINY = 1e-12
_CHUNK_ELEMENTS = 1 << 22  # float64 working set of one chunk of the per-sample sums


def _first_tensor(output: Any) -> Optional[Tensor]:
    """The layer output itself, or the first element of a tuple/list output."""
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, Tensor) and output.is_floating_point() else None


def _rowwise_sums(a: Tensor, b: Tensor, d: Tensor, need: Tuple[str, ...]) -> Dict[str, Tensor]:
    """Per-row float64 sums over ``(N, M)`` tensors, ``M`` in chunks of about
    ``_CHUNK_ELEMENTS`` elements, so the float64 transient stays bounded whatever the size.

    ``need`` names the sums: ``'dd'`` (``sum d^2``), ``'bb'`` (``sum b^2``), ``'aa'``,
    ``'ab'`` (``sum a*b``). Returns ``{name: (N,) float64}``.
    """
    n, m = d.shape
    cols = max(1, _CHUNK_ELEMENTS // max(n, 1))
    out = {k: torch.zeros(n, dtype=torch.float64, device=d.device) for k in need}
    for j in range(0, m, cols):
        chunk = {}  # each input chunk converted to float64 once
        for name, t in (('a', a), ('b', b), ('d', d)):
            if any(name in k for k in need):
                chunk[name] = t[:, j:j + cols].double()
        for k in need:
            u, v = chunk[k[0]], chunk[k[1]]
            out[k] += (u * u).sum(dim=1) if k[0] == k[1] else (u * v).sum(dim=1)
    return out


def discrepancy_per_sample(xq: Tensor, x: Tensor, metric: str = 'l2') -> Tensor:
    """Per-sample discrepancy between ``xq`` and ``x`` (same shape ``(N, ...)``; dim 0 is
    the sample axis, the rest is flattened; a 0-d tensor is one sample). Returns ``(N,)``
    float64 on ``xq``'s device:

    * ``l2``: ``||xq - x||_2`` (the paper's Euclidean distance);
    * ``rms``: ``||xq - x||_2 / sqrt(M)`` with ``M`` the elements per sample (``l2``
      normalised by the output size, comparable across layers of different sizes);
    * ``mse``: ``mean((xq - x)^2)``;
    * ``relative``: ``||xq - x|| / ||x||`` (0 when both are 0);
    * ``cosine``: ``1 - cos(xq, x)`` (0 when ``xq == x``).

    Memory: the difference is formed once in the common dtype of the inputs; the sums are
    accumulated in float64 over column chunks (about 4M elements at a time), so no
    full-size float64 copy is made.
    """
    if metric not in METRICS:
        raise ValueError(f'unknown metric {metric!r}; allowed: {", ".join(METRICS)}')
    if xq.shape != x.shape:
        raise RuntimeError(f'quantized output shape {tuple(xq.shape)} != float output shape {tuple(x.shape)}')
    a = xq.detach().reshape(x.shape[0] if x.dim() else 1, -1)
    b = x.detach().to(a.device).reshape(a.shape)
    d = a - b
    need = {'l2': ('dd',), 'rms': ('dd',), 'mse': ('dd',), 'relative': ('dd', 'bb'),
            'cosine': ('dd', 'aa', 'bb', 'ab')}[metric]
    sums = _rowwise_sums(a, b, d, need)
    dn = sums['dd'].sqrt()
    if metric == 'l2':
        return dn
    if metric == 'rms':
        return dn / math.sqrt(max(a.shape[1], 1))
    if metric == 'mse':
        return sums['dd'] / max(a.shape[1], 1)
    if metric == 'relative':
        return dn / sums['bb'].sqrt().clamp_min(_TINY)
    cos = sums['ab'] / (sums['aa'].sqrt() * sums['bb'].sqrt()).clamp_min(_TINY)
    return torch.where(dn == 0, torch.zeros_like(cos), 1.0 - cos)


class _Accumulator:
    """Sum of per-sample discrepancies and sample counts per layer, kept on the device of
    the layer outputs (no host synchronisation per layer and batch; one transfer at the end).

    ``output_sizes`` (if given) receives ``{layer: per-sample output shape}`` of the first
    call of each layer.
    """

    def __init__(self, names: List[str], metric: str, output_sizes: Optional[Dict[str, List[int]]] = None) -> None:
        self.index = {n: i for i, n in enumerate(names)}
        self.names = names
        self.metric = metric
        self.sums: Optional[Tensor] = None      # (L,) float64, allocated on the first output's device
        self.counts = [0] * len(names)          # sample counts: known on the host from the shapes
        self.output_sizes = output_sizes

    def add(self, name: str, xq: Tensor, x: Tensor) -> None:
        per_sample = discrepancy_per_sample(xq, x, self.metric)
        if self.sums is None:
            self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=per_sample.device)
        i = self.index[name]
        self.sums[i] += per_sample.sum().to(self.sums.device)
        self.counts[i] += per_sample.numel()
        if self.output_sizes is not None and name not in self.output_sizes:
            self.output_sizes[name] = list(x.shape[1:]) if x.dim() else []

    def result(self, reduce_fn: Optional[ReduceFn], device) -> Dict[str, float]:
        sums = self.sums if self.sums is not None else torch.zeros(len(self.names), dtype=torch.float64)
        stats = torch.stack([sums, torch.tensor(self.counts, dtype=torch.float64, device=sums.device)])
        if reduce_fn is not None:
            stats = reduce_fn(stats.to(device) if device is not None else stats, 'sum')
        stats = stats.cpu()
        sums, counts = stats[0], stats[1]
        missing = [n for n, c in zip(self.names, counts.tolist()) if c == 0]
        if len(missing) == len(self.names):
            raise RuntimeError('measure_discrepancy: no quantized layer ran during the forward passes')
        if missing:
            warnings.warn(f'measure_discrepancy: these quantized layers never ran and are excluded: {missing}',
                          RuntimeWarning, stacklevel=3)
        return {n: float(s / c) for n, s, c in zip(self.names, sums.tolist(), counts.tolist()) if c > 0}


def measure_discrepancy(model: nn.Module, batches: Iterable[Any], forward_fn: Optional[ForwardFn] = None,
                        metric: str = 'l2', mode: str = 'local', *, progress: bool = True,
                        reduce_fn: Optional[ReduceFn] = None, offload: bool = True,
                        output_sizes: Optional[Dict[str, List[int]]] = None) -> Dict[str, float]:
    """Discrepancy between quantized and float outputs of every quantized layer.

    Modes (model in eval mode, ``torch.no_grad()``):

    * ``'local'`` -- the error each layer introduces on its own: ``Dis(L_Q(X), L(X))``
      where ``X`` is the layer's input in the float model and ``L_Q`` the layer with its
      own quantizers enabled. One float pass per batch with every quantizer disabled; a
      forward hook on each quantized layer re-runs that layer (``layer.forward``) on the
      same inputs with its own quantizers enabled (those the caller had enabled; nested
      quantized layers, e.g. ``out_proj`` of an attention layer, stay float and their
      hooks are muted during the re-run).
    * ``'cumulative'`` -- the error accumulated up to each layer: the layer's output in
      the quantized model vs in the float model. One float pass (every quantizer
      disabled) records each layer's outputs (detached; on CPU when ``offload``), then one
      quantized pass (quantizers as they were) compares. A layer called several times per
      forward is matched call by call.

    Either way at most one float and one quantized forward of ``model`` per batch.

    Metrics (see :func:`discrepancy_per_sample`): ``'l2'`` (the paper's Euclidean
    distance), ``'rms'`` (l2 / sqrt(elements per sample), comparable across layer sizes),
    ``'mse'``, ``'relative'``, ``'cosine'``; dim 0 of a layer output is the
    sample axis (for sequence-first layouts that is the sequence axis). The value of a
    layer is the mean of its per-sample discrepancies over all samples of all batches
    (i.e. batches weighted by their number of samples). A tuple output (e.g.
    ``MultiheadAttention``) is compared through its first element.

    Args:
        model: a quantized and calibrated model.
        batches: iterable of batches, consumed once.
        forward_fn: ``forward_fn(model, batch)``; defaults as in :func:`calibrate`.
        metric, mode: as above; anything else raises ValueError.
        progress: tqdm progress bar on stderr.
        reduce_fn: ``reduce_fn(tensor, 'sum') -> tensor`` applied once to the ``(2, L)``
            tensor of per-layer discrepancy sums and sample counts (on the model's device),
            e.g. an all-reduce across DDP ranks.
        offload: cumulative mode: keep the recorded float outputs on CPU.
        output_sizes: a dict to fill with ``{layer name: per-sample output shape}`` (the
            compared output without dim 0, first call of the layer on this process).
    Returns:
        ``{layer name: discrepancy}`` in module registration order. Layers that never ran
        are excluded with a RuntimeWarning (RuntimeError if none ran).

    The quantizers' ``enabled`` flags and every module's train/eval mode are restored,
    also on exception.
    """
    if metric not in METRICS:
        raise ValueError(f'unknown metric {metric!r}; allowed: {", ".join(METRICS)}')
    if mode not in MODES:
        raise ValueError(f'unknown mode {mode!r}; allowed: {", ".join(MODES)}')
    layers = quantized_layers(model)
    if not layers:
        raise ValueError('model has no quantized layers; call quantize_model(model, config) first')
    forward_fn = forward_fn or default_forward
    acc = _Accumulator([n for n, _ in layers], metric, output_sizes)
    device = next((p.device for p in model.parameters()), None)
    quantizers = [q for _, q in iter_quantizers(model)]
    handles = []
    with preserved_state(model), torch.no_grad():
        enabled = {id(q): q.enabled for q in quantizers}
        model.eval()
        try:
            if mode == 'local':
                handles = _local_hooks(layers, acc, enabled)
                for q in quantizers:
                    q.enabled = False
                for batch in progress_iter(batches, 'ptqat discrepancy (local)', progress):
                    forward_fn(model, batch)
            else:
                record: Dict[str, List[Tensor]] = {}
                calls: Dict[str, int] = {}
                state = {'phase': 'float'}
                handles = _cumulative_hooks(layers, acc, record, calls, state, offload)
                for batch in progress_iter(batches, 'ptqat discrepancy (cumulative)', progress):
                    record.clear()
                    calls.clear()
                    state['phase'] = 'float'
                    for q in quantizers:
                        q.enabled = False
                    forward_fn(model, batch)
                    state['phase'] = 'quant'
                    for q in quantizers:
                        q.enabled = enabled[id(q)]
                    forward_fn(model, batch)
                    short = [n for n in record if calls.get(n, 0) != len(record[n])]
                    if short:
                        raise RuntimeError(f'measure_discrepancy: layers {short} ran a different number of times '
                                           'in the float and the quantized pass')
        finally:
            for h in handles:
                h.remove()
    return acc.result(reduce_fn, device)


def _local_hooks(layers: List[Tuple[str, QuantModule]], acc: _Accumulator, enabled: Dict[int, bool]) -> list:
    replaying = [False]

    def make_hook(name: str, layer: QuantModule):
        own = [q for q in layer.own_quantizers() if enabled[id(q)]]  # as configured by the user

        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if replaying[0]:
                return
            x = _first_tensor(output)
            if x is None:
                return
            replaying[0] = True
            try:
                for q in own:
                    q.enabled = True
                xq = _first_tensor(module.forward(*args, **kwargs))
            finally:
                for q in own:
                    q.enabled = False
                replaying[0] = False
            acc.add(name, xq, x)
        return hook

    return [layer.register_forward_hook(make_hook(n, layer), with_kwargs=True) for n, layer in layers]


def _cumulative_hooks(layers: List[Tuple[str, QuantModule]], acc: _Accumulator, record: Dict[str, List[Tensor]],
                      calls: Dict[str, int], state: Dict[str, str], offload: bool) -> list:
    def make_hook(name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            x = _first_tensor(output)
            if x is None:
                return
            if state['phase'] == 'float':
                record.setdefault(name, []).append(x.detach().to('cpu', copy=True) if offload else x.detach().clone())
                return
            i = calls.get(name, 0)
            calls[name] = i + 1
            ref = record.get(name, [])
            if i >= len(ref):
                raise RuntimeError(f'measure_discrepancy: layer {name!r} ran more often in the quantized pass '
                                   'than in the float pass')
            acc.add(name, x, ref[i].to(x.device))
        return hook

    return [layer.register_forward_hook(make_hook(n)) for n, layer in layers]
