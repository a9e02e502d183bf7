"""select_layers(ratio_by='params') and layer_param_counts (issue 9 item 7)."""
from __future__ import annotations

import pytest
import torch.nn as nn

from ptqat.quant import QuantConfig, layer_param_counts, quantize_model, select_layers


def _unequal_model():
    """Layers of very different sizes: the small ones have the smallest discrepancy."""
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 8), nn.Linear(8, 64), nn.Linear(64, 256),
                         nn.Linear(256, 8))


def test_layer_param_counts():
    model = _unequal_model()
    quantize_model(model, QuantConfig())
    assert layer_param_counts(model) == {'0': 20, '1': 20, '2': 40, '3': 576, '4': 16640, '5': 2056}


def _mixed_model():
    """8 layers from 136 to 1088 parameters (4808 in all)."""
    dims = [(16, 16), (16, 32), (32, 32), (32, 16), (16, 64), (64, 16), (16, 8), (8, 16)]
    return nn.Sequential(*[nn.Linear(i, o) for i, o in dims])


@pytest.mark.parametrize('strategy, by_layers_share', [('small', 1080 / 4808), ('large', 3728 / 4808),
                                                        ('random', None)])
def test_ratio_by_params_selects_about_half_the_parameters(strategy, by_layers_share):
    model = _mixed_model()
    quantize_model(model, QuantConfig())
    params = layer_param_counts(model)
    total = sum(params.values())
    assert total == 4808
    dis = {n: float(p) for n, p in params.items()}  # discrepancy grows with the layer size
    by_layers = select_layers(dis, strategy, ratio=0.5, seed=3)
    by_params = select_layers(dis, strategy, ratio=0.5, seed=3, ratio_by='params', params=params)
    assert len(by_layers) == 4
    if by_layers_share is not None:  # half the layers is far from half the weights ...
        assert sum(params[n] for n in by_layers) / total == pytest.approx(by_layers_share)
    share = sum(params[n] for n in by_params) / total
    # ... half the weights is within half a layer of it
    assert abs(share - 0.5) <= max(params.values()) / total / 2
    if strategy == 'small':
        assert share == pytest.approx(2664 / 4808)
    if strategy == 'large':
        assert share == pytest.approx(2144 / 4808)


def test_ratio_by_params_reaches_the_target_on_balanced_sizes():
    params = {f'l{i}': 100 * (i % 4 + 1) for i in range(40)}  # 10 000 parameters
    dis = {n: float(i) for i, n in enumerate(params)}
    chosen = select_layers(dis, 'small', ratio=0.5, ratio_by='params', params=params)
    share = sum(params[n] for n in chosen) / sum(params.values())
    assert share == pytest.approx(0.5, abs=0.02)
    assert chosen == list(params)[:len(chosen)]  # the smallest discrepancies


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratio=0.5, ratio_by='weights'), r"unknown ratio_by 'weights'; allowed: layers, params"),
    (dict(ratio=0.5, ratio_by='params'), r"ratio_by='params' needs params="),
    (dict(ratio=0.5, ratio_by='params', params={'a': 3}), r"no count for layer\(s\) \['b'\]"),
    (dict(ratio=0.5, ratio_by='params', params={'a': 3, 'b': -1}), r"non-negative integers, got \{'b': -1\}"),
    (dict(threshold=0.5, ratio_by='params', params={'a': 3, 'b': 1}), r"ratio_by='params' needs a ratio"),
])
def test_ratio_by_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_layers({'a': 1.0, 'b': 2.0}, 'small', **kwargs)


def test_all_and_none_refuse_params_ratio():
    with pytest.raises(ValueError, match="needs a ratio"):
        select_layers({'a': 1.0}, 'all', ratio_by='params', params={'a': 1})
