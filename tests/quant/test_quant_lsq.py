"""LSQQuantizer: forward grid, paper-exact gradients, init methods, observation, state."""
from __future__ import annotations

import math

import pytest
import torch

from ptqat.quant import LSQQuantizer, quant_range


def _init(q: LSQQuantizer, x: torch.Tensor, method: str = 'minmax') -> LSQQuantizer:
    q.init_step_size(x, method)
    return q


def _lsq_reference(x, s, qn, qp, grad_out, ch_axis=None):
    """Hand-written LSQ (paper eq. 1-3 and the 1/sqrt(N*Qp) gradient scale), float64."""
    x, s, grad_out = x.double(), s.double(), grad_out.double()
    if ch_axis is None:
        sb = s.reshape([1] * x.dim())
        n = x.numel()
    else:
        shape = [1] * x.dim()
        shape[ch_axis] = -1
        sb = s.reshape(shape)
        n = x.numel() // s.numel()
    v = x / sb
    y = torch.clamp(v, -qn, qp).round() * sb
    inside = (v > -qn) & (v < qp)
    grad_x = grad_out * inside
    ds = torch.where(v <= -qn, torch.full_like(v, -qn), torch.where(v >= qp, torch.full_like(v, qp), v.round() - v))
    g = 1.0 / math.sqrt(n * qp)
    contrib = grad_out * ds * g
    if ch_axis is None:
        grad_s = contrib.sum().reshape(1)
    else:
        dims = [d for d in range(x.dim()) if d != ch_axis]
        grad_s = contrib.sum(dim=dims)
    return y, grad_x, grad_s


@pytest.mark.parametrize('bits', [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize('signed', [True, False])
@pytest.mark.parametrize('per_channel', [False, True])
def test_forward_lands_on_grid(bits, signed, per_channel):
    x = torch.randn(6, 5, 4) * 3
    q = _init(LSQQuantizer(bits, signed=signed, per_channel=per_channel, ch_axis=1), x, 'lsq')
    y = q(x)
    qn, qp = quant_range(bits, signed)
    s = q.effective_step_size().detach()
    s = s.reshape(1, -1, 1) if per_channel else s
    k = y / s
    assert torch.allclose(k, k.round(), atol=1e-4)
    assert k.round().min() >= -qn and k.round().max() <= qp
    assert y.shape == x.shape and y.dtype == x.dtype
    if not signed:
        assert (y >= 0).all()


@pytest.mark.parametrize('bits', [2, 4, 8])
def test_quant_range_values(bits):
    assert quant_range(bits, True) == (2 ** (bits - 1), 2 ** (bits - 1) - 1)
    assert quant_range(bits, False) == (0, 2 ** bits - 1)


@pytest.mark.parametrize('bits', [2, 3, 4, 8])
@pytest.mark.parametrize('per_channel', [False, True])
@pytest.mark.parametrize('signed', [True, False])
def test_gradients_match_hand_computed_lsq(bits, per_channel, signed):
    torch.manual_seed(bits)
    x = (torch.randn(4, 3, 5) * 2).requires_grad_(True)
    q = LSQQuantizer(bits, signed=signed, per_channel=per_channel, ch_axis=1)
    q.init_step_size(x.detach(), 'minmax')
    with torch.no_grad():  # distinct steps per channel, making some values clip on both sides
        q.step_size.mul_(torch.linspace(0.2, 0.7, q.step_size.numel()))
    grad_out = torch.randn(4, 3, 5)
    y = q(x)
    y.backward(grad_out)
    qn, qp = quant_range(bits, signed)
    ry, rgx, rgs = _lsq_reference(x.detach(), q.step_size.detach(), qn, qp, grad_out, 1 if per_channel else None)
    assert torch.allclose(y.double(), ry, atol=1e-5)
    assert torch.equal(x.grad, rgx.float())
    assert torch.allclose(q.step_size.grad.double(), rgs, rtol=1e-4, atol=1e-7)
    # the clip branches are exercised
    v = x.detach() / (q.step_size.detach().reshape(1, -1, 1) if per_channel else q.step_size.detach())
    assert (v >= qp).any() and (signed is False or (v <= -qn).any())


def test_gradient_scale_uses_elements_per_step():
    """g = 1/sqrt(N*Qp): N = numel per tensor, numel/C per channel."""
    x = torch.full((2, 4, 3), 0.3)
    for per_channel, n in ((False, 24), (True, 6)):
        q = LSQQuantizer(4, per_channel=per_channel, ch_axis=1)
        q.init_step_size(torch.ones(2, 4, 3) * 7, 'minmax')  # s = 1 exactly
        assert torch.allclose(q.step_size.detach(), torch.ones_like(q.step_size))
        q(x).sum().backward()
        # round(0.3) - 0.3 = -0.3 for every element
        expected = -0.3 * (24 if not per_channel else 6) / math.sqrt(n * 7)
        assert torch.allclose(q.step_size.grad, torch.full_like(q.step_size, expected), atol=1e-6)


def test_enabled_false_is_identity():
    x = torch.randn(3, 4)
    q = _init(LSQQuantizer(2), x)
    q.enabled = False
    assert q(x) is x
    q.enabled = True
    assert not torch.equal(q(x), x)


def test_uninitialised_enabled_quantizer_raises_clearly():
    q = LSQQuantizer(4)
    assert not q.is_initialized and not bool(q.initialized)
    with pytest.raises(RuntimeError, match='not initialised'):
        q(torch.randn(3))
    q.enabled = False
    q(torch.randn(3))  # disabled: fine


def test_step_stays_positive_after_huge_negative_step():
    x = torch.randn(8, 4)
    q = _init(LSQQuantizer(4, per_channel=True), x)
    opt = torch.optim.SGD(q.parameters(), lr=1e6)
    q(x).pow(2).sum().mul(-1).backward()
    q.step_size.grad.fill_(1e3)  # drives the raw parameter far below zero
    opt.step()
    assert (q.step_size < 0).all()
    s = q.effective_step_size()
    assert (s > 0).all() and torch.isfinite(s).all()
    y = q(x)
    assert torch.isfinite(y).all()
    with torch.no_grad():
        q.step_size.zero_()
    assert torch.isfinite(q(x)).all() and torch.isfinite(q(torch.zeros(8, 4))).all()


def test_all_zero_input_gives_positive_step_and_finite_output():
    for method in ('lsq', 'minmax', 'percentile', 'mse'):
        q = LSQQuantizer(4, per_channel=True)
        q.init_step_size(torch.zeros(3, 5), method)
        assert (q.effective_step_size() > 0).all()
        assert torch.equal(q(torch.zeros(3, 5)), torch.zeros(3, 5))
        assert torch.isfinite(q(torch.randn(3, 5) * 1e30)).all()


def test_init_methods_formulas():
    x = torch.randn(1000) * 2
    qp = 7
    q = LSQQuantizer(4)
    q.init_step_size(x, 'lsq')
    assert torch.allclose(q.step_size, 2 * x.abs().mean() / math.sqrt(qp) * torch.ones(1))
    q.init_step_size(x, 'minmax')
    assert torch.allclose(q.step_size, x.abs().max() / qp * torch.ones(1))
    q.init_step_size(x, 'percentile')
    assert q.step_size.item() <= x.abs().max().item() / qp
    assert q.step_size.item() == pytest.approx(x.abs().sort().values[math.ceil(0.9999 * 1000) - 1].item() / qp)
    q.init_step_size(x, 'mse')
    assert 0 < q.step_size.item() <= x.abs().max().item() / qp + 1e-7


def test_per_channel_init_is_per_channel():
    w = torch.randn(5, 3, 3, 3) * torch.tensor([0.1, 1, 10, 100, 1000]).reshape(5, 1, 1, 1)
    q = LSQQuantizer(8, per_channel=True, ch_axis=0)
    q.init_step_size(w, 'minmax')
    assert q.step_size.shape == (5,)
    assert torch.allclose(q.step_size, w.abs().amax(dim=(1, 2, 3)) / 127)
    qt = LSQQuantizer(8, per_channel=False)
    qt.init_step_size(w, 'minmax')
    assert qt.step_size.shape == (1,)
    # per channel is far better for channels of very different scales
    assert (q(w) - w).pow(2)[:2].mean() < (qt(w) - w).pow(2)[:2].mean()


def test_mse_beats_minmax_on_heavy_tailed_data():
    x = torch.distributions.Laplace(0.0, 1.0).sample((20000,))
    x[:4] = torch.tensor([40.0, -35.0, 60.0, -50.0])  # rare outliers
    errs = {}
    for method in ('minmax', 'mse', 'percentile', 'lsq'):
        q = LSQQuantizer(4)
        q.init_step_size(x, method)
        errs[method] = (q(x) - x).pow(2).mean().item()
    assert errs['mse'] < errs['minmax'] / 3
    assert errs['mse'] <= min(errs.values()) * 1.01


def test_unknown_method_and_bad_bits_raise():
    q = LSQQuantizer(4)
    with pytest.raises(ValueError, match=r"'bogus'.*lsq, minmax, percentile, mse"):
        q.init_step_size(torch.randn(3), 'bogus')
    with pytest.raises(ValueError, match=r"'kl'"):
        LSQQuantizer(4, init_method='kl')
    for bits in (1, 9, 16, 0, 4.0, True):
        with pytest.raises(ValueError, match=f'got {bits!r}'):
            LSQQuantizer(bits)
    with pytest.raises(ValueError, match='num_channels'):
        LSQQuantizer(4, num_channels=3)


def test_per_channel_channel_mismatch_raises():
    q = _init(LSQQuantizer(4, per_channel=True), torch.randn(4, 3))
    with pytest.raises(RuntimeError, match='5 channels'):
        q(torch.randn(5, 3))


@pytest.mark.parametrize('method', ['lsq', 'minmax', 'percentile', 'mse'])
def test_observation_over_batches(method):
    batches = [torch.randn(64, 3) * (i + 1) for i in range(3)]
    q = LSQQuantizer(8, per_channel=True, ch_axis=1, init_method=method)
    q.start_observation()
    for b in batches:
        assert q(b) is b  # observe mode passes through
    assert q.finish_observation()
    assert not q.observing and q.is_initialized
    allx = torch.cat(batches)
    single = LSQQuantizer(8, per_channel=True, ch_axis=1)
    if method == 'lsq':
        expected = 2 * allx.abs().mean(dim=0) / math.sqrt(127)
    elif method == 'minmax':
        expected = allx.abs().amax(dim=0) / 127
    else:  # mean of per-batch results
        steps = []
        for b in batches:
            single.init_step_size(b, method)
            steps.append(single.step_size.detach().clone())
        expected = torch.stack(steps).mean(dim=0)
    assert torch.allclose(q.step_size.detach(), expected, rtol=1e-5)


def test_observation_reduce_fn_ops():
    seen = []

    def reduce_fn(t, op):
        seen.append(op)
        return t * 2 if op == 'sum' else t

    q = LSQQuantizer(8, init_method='minmax')
    q.start_observation()
    q(torch.tensor([1.0, -3.0]))
    q.finish_observation(reduce_fn)
    assert seen == ['max', 'sum'] and q.step_size.item() == pytest.approx(3 / 127)
    seen.clear()
    q = LSQQuantizer(8, init_method='lsq')
    q.start_observation()
    q(torch.tensor([1.0, -3.0]))
    q.finish_observation(reduce_fn)
    assert seen == ['sum', 'sum'] and q.step_size.item() == pytest.approx(2 * 2.0 / math.sqrt(127))


def test_observed_nothing_leaves_uninitialised():
    q = LSQQuantizer(8)
    q.start_observation()
    assert q.finish_observation() is False
    assert not q.is_initialized


def test_lazy_per_channel_state_dict_roundtrip():
    q = LSQQuantizer(6, per_channel=True, ch_axis=1)
    assert q.step_size.shape == (1,)
    q.init_step_size(torch.randn(4, 7, 2))
    assert q.step_size.shape == (7,)
    fresh = LSQQuantizer(6, per_channel=True, ch_axis=1)
    fresh.load_state_dict(q.state_dict())
    assert fresh.is_initialized and torch.equal(fresh.step_size, q.step_size)
    x = torch.randn(4, 7, 2)
    assert torch.equal(fresh(x), q(x))


def test_extra_repr():
    r = repr(LSQQuantizer(3, signed=False, per_channel=True, ch_axis=1))
    for part in ('bits=3', 'signed=False', 'per_channel=True', 'enabled=True'):
        assert part in r


def test_half_precision_input():
    x = torch.randn(4, 8)
    q = _init(LSQQuantizer(8), x)
    y = q(x.half())
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
