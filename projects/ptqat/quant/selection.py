"""Choosing the layers to fine-tune from their discrepancies."""
from __future__ import annotations

import math
import numbers
import random
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch.nn as nn

from .layers import quantized_layers

__all__ = ['AUTO_RULES', 'RATIO_BY', 'STRATEGIES', 'auto_threshold', 'knee_index', 'layer_param_counts',
           'num_selected', 'resolve_auto_rule', 'select_layers']

STRATEGIES = ('small', 'large', 'random', 'all', 'none')
#: What ``ratio`` counts: layers, or the layers' parameters.
RATIO_BY = ('layers', 'params')
#: How ``threshold='auto'`` picks θ (see :func:`auto_threshold`).
AUTO_RULES = ('knee', 'knee-log', 'budget')


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


def knee_index(values: Sequence[float]) -> int:
    """Index of the knee of an ascending curve ``values`` (the max-distance-to-chord rule,
    Kneedle's geometric core): with x = i / (n - 1) and y scaled to [0, 1] by the first and last
    value, the point farthest from the chord between the end points, ``argmax |x - y|``
    (first one on ties). Always an interior point: ``1 <= k <= n - 2``.

    Raises ValueError for fewer than 3 values, values that do not ascend, or a straight line
    (every point on the chord, e.g. all values equal): such a curve has no knee.
    """
    v = [float(x) for x in values]
    n = len(v)
    if n < 3:
        raise ValueError(f'a knee needs at least 3 values, got {n}')
    if any(not math.isfinite(x) for x in v):
        raise ValueError(f'the curve has a non-finite value: {v}')
    if any(b < a for a, b in zip(v, v[1:])):
        raise ValueError('the curve must be sorted ascending')
    span = v[-1] - v[0]
    if span <= 0:
        raise ValueError(f'the curve is flat (all values {v[0]:.6g}): it has no knee')
    dist = [abs(i / (n - 1) - (x - v[0]) / span) for i, x in enumerate(v)]
    k = max(range(1, n - 1), key=lambda i: (dist[i], -i))
    if dist[k] <= 1e-12:
        raise ValueError('the sorted discrepancies lie on a straight line: no knee to pick θ from; '
                         "give a ratio, a numeric threshold or auto_rule='budget'")
    return k


def _between(a: float, b: float) -> float:
    """A θ with ``a < θ <= b`` (``a < b``): the geometric mean of positive values, else the
    arithmetic one; ``b`` itself if rounding puts the mean on ``a``."""
    t = math.sqrt(a * b) if a > 0 and b > 0 else 0.5 * (a + b)
    return t if a < t <= b else b


def _check_budget(budget: object, total: int) -> int:
    """An absolute parameter budget from ``budget``: an integer >= 1 (a count) or a real in
    (0, 1) (a share of ``total``)."""
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or math.isnan(float(budget)):
        raise ValueError(f'param_budget must be a parameter count (integer >= 1) or a share of the quantized '
                         f"layers' parameters (a number in (0, 1)), got {budget!r}")
    if isinstance(budget, numbers.Integral):
        if budget < 1:
            raise ValueError(f'param_budget must be >= 1 parameter (or a share in (0, 1)), got {budget!r}')
        return int(budget)
    if not 0.0 < float(budget) < 1.0:
        raise ValueError(f'param_budget as a share must be in (0, 1) (give an integer for a count), got {budget!r}')
    return int(math.floor(float(budget) * total))


def auto_threshold(discrepancy: Mapping[str, float], strategy: str = 'small', rule: str = 'knee', *,
                   param_budget: Optional[float] = None, params: Optional[Mapping[str, int]] = None) -> float:
    """θ for ``threshold='auto'``, from the sorted discrepancy curve.

    Rules:

    * ``'knee'``: the layers' discrepancies sorted ascending, the knee by the max-distance-to-chord
      rule (:func:`knee_index`, index ``k``); θ lies between the k-th and the next distinct value,
      so ``small`` fine-tunes the layers up to and including the knee (``Dis < θ``) and ``large``
      the rest (``Dis >= θ``): the two selections are complements. Scale-dependent: with the
      paper's l2 a few very large discrepancies stretch the curve and put the knee late (most
      layers selected);
    * ``'knee-log'``: the same on ``log(Dis)`` (zeros are clipped to the smallest positive value),
      which looks at orders of magnitude instead;
    * ``'budget'``: the largest θ (``small``; the smallest for ``large``) whose selection fits
      ``param_budget`` trainable parameters of the quantized layers (``params``, e.g.
      :func:`layer_param_counts`): an integer >= 1 is a count, a real in (0, 1) a share of the
      total. Layers with equal discrepancy are taken or left together (a threshold cannot
      split them).

    Returns θ such that ``select_layers(discrepancy, strategy, threshold=θ)`` gives the selection
    described. Raises ValueError (naming the value) for an unknown rule, a strategy other than
    small/large, ``param_budget`` with a knee rule or its absence with ``'budget'``, fewer than
    3 layers or a curve without a knee (knee rules), a budget below the smallest layer.
    """
    if rule not in AUTO_RULES:
        raise ValueError(f'unknown auto_rule {rule!r}; allowed: {", ".join(AUTO_RULES)}')
    if strategy not in ('small', 'large'):
        raise ValueError(f"threshold='auto' needs strategy 'small' or 'large', got {strategy!r}")
    if not discrepancy:
        raise ValueError('discrepancy is empty: no layer to select from')
    values = {}
    for name, v in discrepancy.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(float(v)):
            raise ValueError(f'discrepancy[{name!r}] is not a number: {v!r}')
        values[name] = float(v)
    if rule == 'budget':
        if param_budget is None:
            raise ValueError("auto_rule='budget' needs param_budget (a parameter count or a share in (0, 1))")
        counts = _check_params(params, list(values))
        budget = _check_budget(param_budget, sum(counts.values()))
        groups: Dict[float, int] = {}
        for n, v in values.items():
            groups[v] = groups.get(v, 0) + counts[n]
        order = sorted(groups, reverse=(strategy == 'large'))
        taken, cum = 0, 0
        for v in order:
            if cum + groups[v] > budget:
                break
            cum += groups[v]
            taken += 1
        if taken == 0:
            raise ValueError(f'param_budget={param_budget!r} ({budget} parameters) is smaller than the first '
                             f'layer(s) strategy {strategy!r} would take ({groups[order[0]]} parameters, '
                             f'Dis={order[0]:.6g}): no layer fits')
        if strategy == 'large':
            return order[taken - 1]
        last = order[taken - 1]
        return _between(last, order[taken]) if taken < len(order) else math.nextafter(last, math.inf)
    if param_budget is not None:
        raise ValueError(f"param_budget={param_budget!r} is only used by auto_rule='budget', not {rule!r}")
    ordered = sorted(values.values())
    curve = ordered
    if rule == 'knee-log':
        if ordered[-1] <= 0:
            raise ValueError("auto_rule='knee-log': every discrepancy is 0, the curve has no knee")
        floor = min(v for v in ordered if v > 0)
        curve = [math.log(max(v, floor)) for v in ordered]
    k = knee_index(curve)
    # θ between two distinct values: move k to the end of its tie group (or before it)
    while k + 1 < len(ordered) and ordered[k + 1] == ordered[k]:
        k += 1
    if k == len(ordered) - 1:
        while k >= 0 and ordered[k] == ordered[-1]:
            k -= 1
    if k < 0:
        raise ValueError('every discrepancy is equal: no knee to pick θ from')
    return _between(ordered[k], ordered[k + 1])


def resolve_auto_rule(auto_rule: Optional[str], param_budget: Optional[float]) -> str:
    """The rule of ``threshold='auto'``: ``auto_rule``, or by default ``'budget'`` when a
    ``param_budget`` is given and ``'knee'`` otherwise."""
    if auto_rule is None:
        return 'knee' if param_budget is None else 'budget'
    if auto_rule not in AUTO_RULES:
        raise ValueError(f'unknown auto_rule {auto_rule!r}; allowed: {", ".join(AUTO_RULES)}')
    return auto_rule


def select_layers(discrepancy: Dict[str, float], strategy: str = 'small', ratio: Optional[float] = None,
                  threshold: Optional[Union[float, str]] = None, seed: int = 0, *, ratio_by: str = 'layers',
                  params: Optional[Mapping[str, int]] = None, auto_rule: Optional[str] = None,
                  param_budget: Optional[float] = None) -> List[str]:
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

    ``threshold='auto'`` (small/large): θ is picked from the sorted discrepancy curve by
    :func:`auto_threshold` with ``auto_rule`` (``'knee'``, ``'knee-log'`` or ``'budget'``;
    default ``'budget'`` when ``param_budget`` is given, else ``'knee'``) and then used as a
    threshold. ``auto_rule``/``param_budget`` without ``threshold='auto'`` are errors.

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
    if isinstance(threshold, str) and threshold != 'auto':
        raise ValueError(f"threshold must be a number >= 0 or 'auto', got {threshold!r}")
    if threshold == 'auto':
        if ratio is not None:
            raise ValueError(f"threshold='auto' picks θ itself; it takes no ratio (got ratio={ratio!r})")
        if ratio_by != 'layers':
            raise ValueError(f"ratio_by={ratio_by!r} needs a ratio; threshold='auto' uses none "
                             "(auto_rule='budget' with param_budget bounds the parameters)")
        rule = resolve_auto_rule(auto_rule, param_budget)
        threshold = auto_threshold(values, strategy, rule, param_budget=param_budget,
                                   params=params if rule == 'budget' else None)
    elif auto_rule is not None or param_budget is not None:
        raise ValueError(f"auto_rule={auto_rule!r} / param_budget={param_budget!r} need threshold='auto', "
                         f'got threshold={threshold!r}')
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
