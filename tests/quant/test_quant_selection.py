"""select_layers(): strategies, rounding, errors."""
from __future__ import annotations

import math

import pytest

from ptqat.quant import num_selected, select_layers

DIS = {'a': 0.5, 'b': 0.1, 'c': 0.9, 'd': 0.3, 'e': 0.7}


def test_small_ratio_and_threshold_keep_network_order():
    assert select_layers(DIS, 'small', ratio=0.4) == ['b', 'd']
    assert select_layers(DIS, 'small', threshold=0.5) == ['b', 'd']
    assert select_layers(DIS, 'small', ratio=1.0) == list(DIS)


def test_large_ratio_and_threshold():
    assert select_layers(DIS, 'large', ratio=0.4) == ['c', 'e']
    assert select_layers(DIS, 'large', threshold=0.5) == ['a', 'c', 'e']   # Dis >= threshold


def test_ratio_rounding_is_half_up():
    assert select_layers(DIS, 'small', ratio=0.5) == ['a', 'b', 'd']       # 2.5 -> 3
    assert select_layers(DIS, 'small', ratio=0.29) == ['b']                # 1.45 -> 1
    assert num_selected(0.35, 20) == 7 and num_selected(0.5, 5) == 3 and num_selected(0.1, 4) == 0
    for n in range(1, 30):
        for r in (0.1, 0.25, 0.3, 0.5, 0.75, 1.0):
            assert abs(num_selected(r, n) - r * n) <= 0.5 + 1e-9


def test_ties_broken_by_network_order():
    d = {'x': 1.0, 'y': 1.0, 'z': 1.0}
    assert select_layers(d, 'small', ratio=0.34) == ['x']
    assert select_layers(d, 'large', ratio=0.34) == ['x']


def test_random_is_seeded_and_sized():
    d = {f'l{i}': float(i) for i in range(20)}
    a = select_layers(d, 'random', ratio=0.3, seed=1)
    assert a == select_layers(d, 'random', ratio=0.3, seed=1) and len(a) == 6
    assert a == [n for n in d if n in a]
    assert any(select_layers(d, 'random', ratio=0.3, seed=s) != a for s in range(2, 6))


def test_all_and_none():
    assert select_layers(DIS, 'all') == list(DIS)
    assert select_layers(DIS, 'none') == []


def test_inf_is_allowed():
    assert select_layers({'a': math.inf, 'b': 1.0}, 'small', ratio=0.5) == ['b']


@pytest.mark.parametrize('kwargs, match', [
    (dict(strategy='smallest', ratio=0.5), r"unknown selection strategy 'smallest'; allowed: small, large"),
    (dict(strategy='small', ratio=0.0), r'ratio must be in \(0, 1\], got 0.0'),
    (dict(strategy='small', ratio=1.5), r'ratio must be in \(0, 1\], got 1.5'),
    (dict(strategy='large', ratio=-0.1), r'got -0.1'),
    (dict(strategy='small', ratio=float('nan')), r'ratio must be a real number, got nan'),
    (dict(strategy='small', ratio='half'), r"ratio must be a real number, got 'half'"),
    (dict(strategy='small'), r'exactly one of ratio/threshold, got ratio=None, threshold=None'),
    (dict(strategy='large', ratio=0.5, threshold=0.2), r'exactly one of ratio/threshold, got ratio=0.5, threshold=0.2'),
    (dict(strategy='all', ratio=0.5), r"strategy 'all' takes no ratio/threshold, got ratio=0.5"),
    (dict(strategy='none', threshold=0.5), r"strategy 'none' takes no ratio/threshold.*threshold=0.5"),
    (dict(strategy='random'), r"'random' needs a ratio"),
    (dict(strategy='random', ratio=0.5, threshold=0.1), r"not a threshold \(got threshold=0.1\)"),
    (dict(strategy='small', threshold=0.01), r'threshold=0.01 selects no layer'),
    (dict(strategy='large', threshold=5.0), r'threshold=5.0 selects no layer'),
    (dict(strategy='large', threshold=-1.0), r'threshold must be >= 0 \(discrepancies are >= 0\), got -1.0'),
    (dict(strategy='small', ratio=0.05), r'ratio=0.05 of 5 layers selects no layer'),
    (dict(strategy='random', ratio=0.05), r'ratio=0.05 of 5 layers selects no layer'),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_layers(DIS, **kwargs)


def test_empty_and_nan_discrepancy():
    with pytest.raises(ValueError, match='discrepancy is empty'):
        select_layers({}, 'small', ratio=0.5)
    with pytest.raises(ValueError, match=r"NaN for layer\(s\) \['b'\]"):
        select_layers({'a': 1.0, 'b': float('nan')}, 'all')
    with pytest.raises(ValueError, match=r"discrepancy\['a'\] is not a number: 'x'"):
        select_layers({'a': 'x'}, 'all')
