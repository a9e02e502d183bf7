"""threshold='auto': θ from the sorted discrepancy curve (knee, knee on log Dis, parameter budget)."""
from __future__ import annotations

import math
import random

import pytest

from ptqat.quant import auto_threshold, knee_index, select_layers


def _hockey_stick(n_flat=8, n_steep=4, shuffle_seed=0):
    """8 layers near 1, then 4 far larger ones: the knee is the last flat layer."""
    vals = [1.0 + 0.01 * i for i in range(n_flat)] + [100.0 * (i + 1) for i in range(n_steep)]
    names = [f'l{i}' for i in range(len(vals))]
    order = random.Random(shuffle_seed).sample(range(len(vals)), len(vals))  # network order != rank order
    return {names[i]: vals[i] for i in order}, names[:n_flat]


def test_knee_index_on_crafted_curves():
    # convex hockey stick: flat, then rising -> the last flat point
    assert knee_index([0, 0.1, 0.2, 0.3, 5, 10]) == 3
    # concave: rising, then flat -> the first flat point
    assert knee_index([0, 5, 9, 9.5, 9.7, 10]) == 2
    # the farthest point from the chord in normalised coordinates, not the largest jump
    assert knee_index([0.0, 1.0, 1.5, 1.6, 100.0]) == 3


@pytest.mark.parametrize('values, match', [
    ([1.0, 2.0], 'at least 3 values'),
    ([1.0, 1.0, 1.0, 1.0], 'flat'),
    ([1.0, 2.0, 3.0, 4.0], 'straight line'),
    ([3.0, 2.0, 1.0], 'sorted ascending'),
    ([1.0, math.inf, 2.0], 'non-finite'),
])
def test_knee_index_errors(values, match):
    with pytest.raises(ValueError, match=match):
        knee_index(values)


def test_knee_small_and_large_are_complements():
    dis, flat = _hockey_stick()
    small = select_layers(dis, 'small', threshold='auto')
    large = select_layers(dis, 'large', threshold='auto')
    assert sorted(small) == sorted(flat)
    assert small == [n for n in dis if n in set(flat)]  # network order kept
    assert set(small) | set(large) == set(dis) and not set(small) & set(large)
    theta = auto_threshold(dis, 'small', 'knee')
    assert max(dis[n] for n in small) < theta <= min(dis[n] for n in large)
    assert select_layers(dis, 'small', threshold=theta) == small  # θ reproduces the selection


def test_knee_log_looks_at_orders_of_magnitude():
    # five layers near 0.01, two near 1, one at 100
    dis = {'a': 0.010, 'b': 0.011, 'c': 0.012, 'd': 0.013, 'e': 0.014, 'f': 1.0, 'g': 1.2, 'h': 100.0}
    # linear scale: the 100 dominates, everything below it looks flat -> all but the last
    assert select_layers(dis, 'small', threshold='auto', auto_rule='knee') == list('abcdefg')
    # log scale: the jump of two orders of magnitude after the first five
    assert select_layers(dis, 'small', threshold='auto', auto_rule='knee-log') == list('abcde')
    # zeros are clipped to the smallest positive value, not an error
    assert select_layers(dict(dis, a=0.0), 'small', threshold='auto', auto_rule='knee-log') == list('abcde')


def test_knee_ties_are_never_split():
    dis = {'a': 0.1, 'b': 0.1, 'c': 0.1, 'd': 5.0, 'e': 5.0, 'f': 9.0, 'g': 10.0}
    small = select_layers(dis, 'small', threshold='auto')
    assert small in (['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e'])
    # a knee on the last tie group moves before it
    dis2 = {'a': 0.0, 'b': 1.0, 'c': 1.0, 'd': 1.0}
    assert select_layers(dis2, 'small', threshold='auto') == ['a']


def test_budget_takes_the_largest_theta_that_fits():
    dis = {'a': 0.4, 'b': 0.1, 'c': 0.3, 'd': 0.2, 'e': 0.9}
    params = {'a': 40, 'b': 10, 'c': 30, 'd': 20, 'e': 100}   # total 200
    # ascending: b(10) d(20) c(30) a(40) e(100): cumulative 10, 30, 60, 100, 200
    assert select_layers(dis, 'small', threshold='auto', param_budget=60, params=params) == ['b', 'c', 'd']
    assert select_layers(dis, 'small', threshold='auto', param_budget=99, params=params) == ['b', 'c', 'd']
    assert select_layers(dis, 'small', threshold='auto', param_budget=100, params=params) == ['a', 'b', 'c', 'd']
    assert select_layers(dis, 'small', threshold='auto', param_budget=0.5, params=params) == ['a', 'b', 'c', 'd']
    assert select_layers(dis, 'small', threshold='auto', param_budget=10 ** 6, params=params) == list(dis)
    # large: from the top, e alone is 100 of a 150 budget, then a (40) -> 140, c would be 170
    assert select_layers(dis, 'large', threshold='auto', param_budget=150, params=params) == ['a', 'e']
    theta = auto_threshold(dis, 'small', 'budget', param_budget=60, params=params)
    assert 0.3 < theta <= 0.4
    assert auto_threshold(dis, 'large', 'budget', param_budget=150, params=params) == 0.4
    # a budget of every layer: θ just above the largest Dis
    assert auto_threshold(dis, 'small', 'budget', param_budget=200, params=params) > 0.9


def test_budget_keeps_ties_together():
    dis = {'a': 0.1, 'b': 0.2, 'c': 0.2, 'd': 0.5}
    params = {'a': 10, 'b': 10, 'c': 10, 'd': 10}
    # b and c have the same Dis: a threshold takes both or neither
    assert select_layers(dis, 'small', threshold='auto', param_budget=25, params=params) == ['a']
    assert select_layers(dis, 'small', threshold='auto', param_budget=30, params=params) == ['a', 'b', 'c']


@pytest.mark.parametrize('kwargs, match', [
    (dict(strategy='random'), "threshold='auto' needs strategy 'small' or 'large', got 'random'"),
    (dict(strategy='all'), "threshold='auto' needs strategy 'small' or 'large', got 'all'"),
    (dict(ratio=0.5), "threshold='auto' picks θ itself; it takes no ratio"),
    (dict(auto_rule='elbow'), "unknown auto_rule 'elbow'; allowed: knee, knee-log, budget"),
    (dict(auto_rule='budget'), "auto_rule='budget' needs param_budget"),
    (dict(auto_rule='knee', param_budget=10, params={}), "param_budget=10 is only used by auto_rule='budget'"),
    (dict(param_budget=0, params={'a': 1, 'b': 1, 'c': 1}), 'param_budget must be >= 1 parameter'),
    (dict(param_budget=1.5, params={'a': 1, 'b': 1, 'c': 1}), r'param_budget as a share must be in \(0, 1\)'),
    (dict(param_budget=True, params={'a': 1, 'b': 1, 'c': 1}), 'param_budget must be a parameter count'),
    (dict(param_budget='half', params={'a': 1, 'b': 1, 'c': 1}),
     "param_budget must be a parameter count .* got 'half'"),
    (dict(param_budget=5), r"ratio_by='params' needs params=\{layer: parameter count\}"),
    (dict(param_budget=5, params={'a': 10, 'b': 20, 'c': 30}), r'param_budget=5 \(5 parameters\) is smaller than'),
])
def test_auto_errors(kwargs, match):
    dis = {'a': 0.1, 'b': 0.2, 'c': 5.0}
    kwargs = dict(kwargs)
    strategy = kwargs.pop('strategy', 'small')
    with pytest.raises(ValueError, match=match):
        select_layers(dis, strategy, threshold='auto', **kwargs)


def test_auto_options_need_threshold_auto():
    dis = {'a': 0.1, 'b': 0.2, 'c': 5.0}
    with pytest.raises(ValueError,
                       match=r"auto_rule='knee' / param_budget=None need threshold='auto', got threshold=0.3"):
        select_layers(dis, 'small', threshold=0.3, auto_rule='knee')
    with pytest.raises(ValueError, match=r"param_budget=10 need threshold='auto', got threshold=None"):
        select_layers(dis, 'small', ratio=0.5, param_budget=10)
    with pytest.raises(ValueError, match=r"threshold must be a number >= 0 or 'auto', got 'knee'"):
        select_layers(dis, 'small', threshold='knee')
    with pytest.raises(ValueError, match=r'a knee needs at least 3 values, got 2'):
        select_layers({'a': 0.1, 'b': 0.2}, 'small', threshold='auto')
