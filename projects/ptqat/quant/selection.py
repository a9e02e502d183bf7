"""Choosing the layers to fine-tune from their discrepancies."""
from __future__ import annotations

import math
import numbers
import random
from typing import Dict, List, Optional

__all__ = ['STRATEGIES', 'num_selected', 'select_layers']

STRATEGIES = ('small', 'large', 'random', 'all', 'none')


def num_selected(ratio: float, n: int) -> int:
    """How many of ``n`` layers a ``ratio`` selects: round half up, ``floor(ratio * n + 0.5)``
    (computed with a 1e-9 tolerance so that e.g. ``0.35 * 20`` gives 7)."""
    return int(math.floor(ratio * n + 0.5 + 1e-9))


def _check_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise ValueError(f'{name} must be a real number, got {value!r}')
    return float(value)


def select_layers(discrepancy: Dict[str, float], strategy: str = 'small', ratio: Optional[float] = None,
                  threshold: Optional[float] = None, seed: int = 0) -> List[str]:
    """Layers to fine-tune, in the order of ``discrepancy`` (network order).

    Strategies:

    * ``'small'`` (PTQAT): layers with ``Dis < threshold``, or the ``ratio`` fraction with
      the smallest discrepancy;
    * ``'large'`` (ablation): ``Dis >= threshold``, or the largest ``ratio`` fraction;
    * ``'random'`` (ablation): a ``ratio`` fraction drawn with ``random.Random(seed)``;
    * ``'all'``: every layer (full QAT); ``'none'``: no layer (PTQ), returns ``[]``.

    ``ratio`` selects ``floor(ratio * n + 0.5)`` layers (round half up); ties in
    discrepancy are broken by network order.

    Raises ValueError (naming the offending value) for: an unknown strategy; an empty or
    NaN-containing ``discrepancy``; ``ratio`` outside ``(0, 1]``; a negative ``threshold``; both or neither of
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

    names = list(values)
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
        k = num_selected(ratio, len(names))
        if k == 0:
            raise ValueError(f'ratio={ratio!r} of {len(names)} layers selects no layer')
        position = {n: i for i, n in enumerate(names)}
        sign = 1.0 if strategy == 'small' else -1.0
        ranked = sorted(names, key=lambda n: (sign * values[n], position[n]))
        chosen = set(ranked[:k])
    return [n for n in names if n in chosen]
