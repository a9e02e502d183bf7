"""Discrepancy and calibration without full-size float64 copies or per-layer host syncs
(issue 9 item 6): same results as the former float64 formulas."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from ptqat.quant import METRICS, LSQQuantizer, QuantConfig, discrepancy_per_sample, quantize_model
from ptqat.quant import discrepancy as discrepancy_mod
from ptqat.quant import lsq as lsq_mod
from ptqat.quant.discrepancy import _Accumulator


def _former(xq, x, metric):
    """The former implementation: float64 copies of both tensors and of their difference."""
    a = xq.detach().double().reshape(x.shape[0] if x.dim() else 1, -1)
    b = x.detach().double().reshape(a.shape)
    d = a - b
    dn = d.norm(dim=1)
    if metric == 'l2':
        return dn
    if metric == 'rms':
        return dn / math.sqrt(a.shape[1])
    if metric == 'mse':
        return d.pow(2).mean(dim=1)
    if metric == 'relative':
        return dn / b.norm(dim=1).clamp_min(1e-12)
    cos = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return torch.where(dn == 0, torch.zeros_like(cos), 1.0 - cos)


@pytest.mark.parametrize('metric', METRICS)
@pytest.mark.parametrize('chunk', [7, 1 << 22])
def test_per_sample_equals_former_float64_formula(metric, chunk, monkeypatch):
    monkeypatch.setattr(discrepancy_mod, '_CHUNK_ELEMENTS', chunk)  # 7: many column chunks
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 6, 7, generator=g) * 3
    xq = x + 0.05 * torch.randn(x.shape, generator=g)
    got = discrepancy_per_sample(xq, x, metric)
    assert got.dtype == torch.float64 and got.shape == (4,)
    torch.testing.assert_close(got, _former(xq, x, metric), rtol=1e-6, atol=1e-12)


def test_half_inputs_are_not_copied_to_float64_in_full():
    x = torch.randn(2, 300).half()
    xq = (x.float() + 0.01).half()
    got = discrepancy_per_sample(xq, x, 'l2')
    torch.testing.assert_close(got, _former(xq, x, 'l2'), rtol=1e-3, atol=1e-6)


def test_rms_is_l2_over_sqrt_of_elements_per_sample():
    x = torch.zeros(2, 4, 25)
    xq = torch.ones(2, 4, 25)
    assert discrepancy_per_sample(xq, x, 'rms').tolist() == pytest.approx([1.0, 1.0])
    assert discrepancy_per_sample(xq, x, 'l2').tolist() == pytest.approx([10.0, 10.0])


def test_accumulator_never_reads_values_back_to_the_host():
    """On the 'meta' device any host read (float(), .item(), .tolist()) raises: adding a
    layer output must only queue device work."""
    acc = _Accumulator(['a', 'b'], 'l2', output_sizes={})
    x = torch.empty(3, 8, 5, device='meta')
    acc.add('a', x, x)
    acc.add('a', x, x)
    acc.add('b', x[:2], x[:2])
    assert acc.sums.device.type == 'meta' and acc.counts == [6, 2]
    assert acc.output_sizes == {'a': [8, 5], 'b': [8, 5]}


def test_measure_discrepancy_reports_output_sizes():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 5))
    quantize_model(model, QuantConfig(a_bits=None))
    from ptqat.quant import calibrate, measure_discrepancy
    batches = [torch.randn(2, 3, 8, 8)]
    calibrate(model, batches, progress=False)
    sizes = {}
    measure_discrepancy(model, batches, progress=False, output_sizes=sizes)
    assert sizes == {'0': [4, 6, 6], '2': [5]}


def test_percentile_observation_subsamples_like_mse(monkeypatch):
    monkeypatch.setattr(lsq_mod, '_MSE_MAX_ELEMENTS', 1000)
    seen = []
    real = lsq_mod._kth_percentile
    monkeypatch.setattr(lsq_mod, '_kth_percentile', lambda mag, p: seen.append(mag.numel()) or real(mag, p))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 250, generator=g)  # 10000 elements
    q = LSQQuantizer(8, init_method='percentile', percentile=99.0)
    q.start_observation()
    q(x)
    assert q.finish_observation()
    assert seen == [1000]
    full = real(x.abs().reshape(1, -1), 99.0) / 127
    assert q.step_size.item() == pytest.approx(full.item(), rel=0.05)


def test_small_percentile_observation_is_unchanged():
    x = torch.randn(64, 3)
    q = LSQQuantizer(8, init_method='percentile')
    q.start_observation()
    q(x)
    q.finish_observation()
    expected = lsq_mod._kth_percentile(x.abs().reshape(1, -1), 99.99) / 127
    assert q.step_size.item() == expected.item()
