"""Property tests (hypothesis) of the LSQ quantizer."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqat.quant import LSQQuantizer, quant_range

SETTINGS = settings(max_examples=50, deadline=None)
finite = st.floats(min_value=-2.0 ** 20, max_value=2.0 ** 20, allow_nan=False, allow_infinity=False, width=32)
values = st.lists(finite, min_size=1, max_size=64)
bits = st.integers(min_value=2, max_value=8)


@SETTINGS
@given(values, bits, st.booleans(), st.sampled_from(['lsq', 'minmax', 'percentile', 'mse']))
def test_quantize_twice_equals_once(xs, b, signed, method):
    x = torch.tensor(xs)
    q = LSQQuantizer(b, signed=signed)
    q.init_step_size(x, method)
    once = q(x)
    assert torch.equal(q(once), once)
    qn, qp = quant_range(b, signed)
    k = (once / q.effective_step_size()).round()
    assert k.min() >= -qn and k.max() <= qp


@SETTINGS
@given(values, bits, st.lists(st.floats(min_value=-2.0 ** 26, max_value=2.0 ** 26, allow_nan=False, width=32),
                              min_size=1, max_size=5), st.booleans())
def test_step_stays_positive_and_output_finite_under_random_gradient_steps(xs, b, grads, per_channel):
    x = torch.tensor(xs).reshape(1, -1)
    q = LSQQuantizer(b, per_channel=per_channel, ch_axis=1)
    q.init_step_size(x, 'minmax')
    opt = torch.optim.SGD(q.parameters(), lr=1.0)
    for g in grads:
        opt.zero_grad()
        (q(x) * g).sum().backward()
        opt.step()
        s = q.effective_step_size()
        assert (s > 0).all() and torch.isfinite(s).all()
        y = q(x)
        assert torch.isfinite(y).all()


@SETTINGS
@given(values, bits, st.floats(min_value=-2.0 ** 100, max_value=2.0 ** 100, allow_nan=False, width=32), st.booleans())
def test_output_always_finite_for_any_step(xs, b, step, signed):
    x = torch.tensor(xs)
    q = LSQQuantizer(b, signed=signed)
    q.init_step_size(x, 'lsq')
    with torch.no_grad():
        q.step_size.fill_(step)  # including 0, negative and huge values
    y = q(x.requires_grad_(True))
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert torch.isfinite(q.step_size.grad).all() and torch.isfinite(x.grad).all()


@SETTINGS
@given(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=6),
       st.sampled_from(['lsq', 'minmax', 'percentile', 'mse']))
def test_calibrated_step_is_positive_and_finite(batches, method):
    q = LSQQuantizer(8, per_channel=True, ch_axis=1, init_method=method)
    q.start_observation()
    for row in batches:
        q(torch.tensor([row]))
    assert q.finish_observation()
    assert (q.step_size > 0).all() and torch.isfinite(q.step_size).all()
