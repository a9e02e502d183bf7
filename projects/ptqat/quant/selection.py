"""Choosing the layers to fine-tune from their discrepancies."""
from __future__ import annotations

import math
import numbers
import random
from typing import Dict, List, Mapping, Optional, Sequence

import torch.nn as nn

from .layers import quantized_layers

__all__ = ['RATIO_BY', 'STRATEGIES', 'layer_param_counts', 'num_selected', 'select_layers']

STRATEGIES = ('small', 'large', 'random', 'all', 'none')
#: What ``ratio`` counts: layers, or the layers' parameters.
RATIO_BY = ('layers', 'params')


def layer_param_counts(model: nn.Module) -> Dict[str, int]:
    """``{layer name: number of parameter elements}`` of every quantized layer: its own
    weights and biases (``parameters(recurse=False)``; step sizes and nested quantized
    layers, e.g. an attention layer's ``out_proj``, are not counted), network order."""
    return {name: int(sum(p.numel() for p in layer.parameters(recurse=False)))  # type: ignore[attr-defined]
            for name, layer in quantized_layers(model)}


def _prefix_by_params(ranked: Sequence[str], params: Mapping[str, int], ratio: float) -> List[str]:
    """The shortest prefix of ``ranked`` (at least one layer) whose parameter count is
    closest to ``ratio`` of the total (ties: the shorter prefix)."""
    target = ratio * sum(params[n] for n in ranked)
    best_k, best_gap, cum = 1, math.inf, 0
    for k, name in enumerate(ranked, start=1):
        cum += params[name]
        gap = abs(cum - target)
        if gap < best_gap - 1e-9:
            best_k, best_gap = k, gap
        if cum >= target:
            break
    return list(ranked[:best_k])


def _check_params(params: Optional[Mapping[str, int]], names: Sequence[str]) -> Dict[str, int]:
    if params is None:
        raise ValueError("ratio_by='params' needs params={layer: parameter count} (see layer_param_counts)")
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"ratio_by='params': params has no count for layer(s) {missing[:8]}")
    bad = {n: params[n] for n in names if isinstance(params[n], bool) or not isinstance(params[n], numbers.Integral)
           or params[n] < 0}
    if bad:
        raise ValueError(f'params must be non-negative integers, got {bad}')
    if sum(params[n] for n in names) == 0:
        raise ValueError("ratio_by='params': the layers have no parameters")
    return {n: int(params[n]) for n in names}


def num_selected(ratio: float, n: int) -> int:
    """How many of ``n`` layers a ``ratio`` selects: round half up, ``floor(ratio * n + 0.5)``
    (computed with a 1e-9 tolerance so that e.g. ``0.35 * 20`` gives 7)."""
    return int(math.floor(ratio * n + 0.5 + 1e-9))


def _check_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise ValueError(f'{name} must be a real number, got {value!r}')
    return float(value)


def select_layers(discrepancy: Dict[str, float], strategy: str = 'small', ratio: Optional[float] = None,
                  threshold: Optional[float] = None, seed: int = 0, *, ratio_by: str = 'layers',
                  params: Optional[Mapping[str, int]] = None) -> List[str]:
    """Layers to fine-tune, in the order of ``discrepancy`` (network order).

    Strategies:

    * ``'small'`` (PTQAT): layers with ``Dis < threshold``, or the ``ratio`` fraction with
      the smallest discrepancy;
    * ``'large'`` (ablation): ``Dis >= threshold``, or the largest ``ratio`` fraction;
    * ``'random'`` (ablation): a ``ratio`` fraction drawn with ``random.Random(seed)``;
    * ``'all'``: every layer (full QAT); ``'none'``: no layer (PTQ), returns ``[]``.

    ``ratio_by='layers'`` (default): ``ratio`` selects ``floor(ratio * n + 0.5)`` layers
    (round half up). ``ratio_by='params'``: ``ratio`` is a share of the parameters
    (``params``, e.g. :func:`layer_param_counts`): layers are taken in the strategy's order
    (smallest / largest discrepancy first, or a seeded random order) while that brings the
    selected parameter count closer to ``ratio`` of the total, at least one layer. Ties in
    discrepancy are broken by network order.

    Raises ValueError (naming the offending value) for: an unknown strategy or
    ``ratio_by``; ``ratio_by='params'`` without a ratio or without a count for every layer;
    an empty or NaN-containing ``discrepancy``; ``ratio`` outside ``(0, 1]``; a negative ``threshold``; both or neither of
    ``ratio``/``threshold`` for small/large; a threshold for random; ``ratio`` or
    ``threshold`` for all/none; zero layers selected for small/large/random.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f'unknown selection strategy {strategy!r}; allowed: {", ".join(STRATEGIES)}')
    if not discrepancy:
        raise ValueError('discrepancy is empty: no layer to select from')
    values: Dict[str, float] = {}
    for name, v in discrepancy.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f'discrepancy[{name!r}] is not a number: {v!r}')
        values[name] = float(v)
    nan = [n for n, v in values.items() if math.isnan(v)]
    if nan:
        raise ValueError(f'discrepancy contains NaN for layer(s) {nan}')
    if ratio is not None:
        ratio = _check_number(ratio, 'ratio')
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f'ratio must be in (0, 1], got {ratio!r}')
    if threshold is not None:
        threshold = _check_number(threshold, 'threshold')
        if threshold < 0:
            raise ValueError(f'threshold must be >= 0 (discrepancies are >= 0), got {threshold!r}')
    if ratio_by not in RATIO_BY:
        raise ValueError(f'unknown ratio_by {ratio_by!r}; allowed: {", ".join(RATIO_BY)}')
    if ratio_by == 'params' and ratio is None:
        raise ValueError(f"ratio_by='params' needs a ratio (strategy={strategy!r}, threshold={threshold!r})")

    names = list(values)
    counts = _check_params(params, names) if ratio_by == 'params' else None
    if strategy in ('all', 'none'):
        if ratio is not None or threshold is not None:
            raise ValueError(f'strategy {strategy!r} takes no ratio/threshold, got ratio={ratio!r}, '
                             f'threshold={threshold!r}')
        return names if strategy == 'all' else []

    if strategy == 'random':
        if threshold is not None:
            raise ValueError(f"strategy 'random' takes a ratio, not a threshold (got threshold={threshold!r})")
        if ratio is None:
            raise ValueError("strategy 'random' needs a ratio")
        if counts is not None:
            order = random.Random(seed).sample(names, len(names))
            chosen = set(_prefix_by_params(order, counts, ratio))
            return [n for n in names if n in chosen]
        k = num_selected(ratio, len(names))
        if k == 0:
            raise ValueError(f'ratio={ratio!r} of {len(names)} layers selects no layer')
        chosen = set(random.Random(seed).sample(names, k))
        return [n for n in names if n in chosen]

    if (ratio is None) == (threshold is None):
        raise ValueError(f'strategy {strategy!r} needs exactly one of ratio/threshold, got ratio={ratio!r}, '
                         f'threshold={threshold!r}')
    if threshold is not None:
        chosen = {n for n, v in values.items() if (v < threshold if strategy == 'small' else v >= threshold)}
        if not chosen:
            raise ValueError(f'threshold={threshold!r} selects no layer with strategy {strategy!r} '
                             f'(discrepancies range {min(values.values()):.6g} .. {max(values.values()):.6g})')
    else:
        position = {n: i for i, n in enumerate(names)}
        sign = 1.0 if strategy == 'small' else -1.0
        ranked = sorted(names, key=lambda n: (sign * values[n], position[n]))
        if counts is not None:
            chosen = set(_prefix_by_params(ranked, counts, ratio))
        else:
            k = num_selected(ratio, len(names))
            if k == 0:
                raise ValueError(f'ratio={ratio!r} of {len(names)} layers selects no layer')
            chosen = set(ranked[:k])
    return [n for n in names if n in chosen]
