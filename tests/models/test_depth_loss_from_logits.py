"""The depth loss computed from the logits (``depth_loss='bce_logits'``).

BEVDepth's loss is a per-bin binary cross-entropy on the softmax of the depth
logits. On the probabilities (upstream, ``'bce'``) its float32 gradient is
wrong once a bin rounds to p = 1; :func:`depth_bce_from_logits` is the same
function with a bounded, correct gradient.
"""
import pytest
import torch
import torch.nn.functional as F

from bevdet_testutils import make_camera_inputs
from test_bevdepth4d_depth_net import IMG_HW, small_vt

torch.set_num_threads(1)


def reference_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """float64, straight from the definition: log(1 - p_j) as the log-sum-exp
    of the other logits minus that of all (no 1 - p formed)."""
    z = logits.double()
    total = torch.logsumexp(z, dim=1, keepdim=True)
    eye = torch.eye(z.shape[1], dtype=torch.bool)
    others = z[:, None, :].masked_fill(eye[None], float('-inf'))
    log_not_p = torch.logsumexp(others, dim=2) - total
    return -(target * (z - total) + (1 - target) * log_not_p).sum()


def grad_of(loss_fn, logits, target):
    z = logits.clone().requires_grad_()
    loss = loss_fn(z, target)
    loss.backward()
    return loss.detach(), z.grad


def one_hot(index, d):
    return F.one_hot(torch.tensor(index), d).float()


def test_value_matches_bce_on_probabilities():
    from ptqat.models.bevdet.lss_view_transformer import depth_bce_from_logits
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 30, generator=g, dtype=torch.float64) * 3
    y = one_hot(torch.randint(0, 30, (64,), generator=g).tolist(), 30).double()
    y[5] = 0  # a row without target: only the (1 - y) terms
    ours = depth_bce_from_logits(z, y)
    upstream = F.binary_cross_entropy(z.softmax(1), y, reduction='sum')
    torch.testing.assert_close(ours, upstream, rtol=1e-10, atol=0)
    torch.testing.assert_close(ours, reference_bce(z, y), rtol=1e-10, atol=0)


@pytest.mark.parametrize('gap', [20.0, 60.0, 300.0])
def test_saturated_bin_gradient_is_correct_and_bounded(gap):
    """A wrong bin with logit ``gap`` above the rest: in float32 it rounds to
    p = 1 (from gap ~17). The float32 gradient from the logits matches the
    float64 reference; the upstream form's does not."""
    from ptqat.models.bevdet.lss_view_transformer import depth_bce_from_logits
    d = 30
    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, d, generator=g)
    z[:, 3] += gap
    y = one_hot([5, 5, 0, 29, 3, 7, 7, 12], d)
    loss, grad = grad_of(depth_bce_from_logits, z, y)
    ref_loss, ref_grad = grad_of(reference_bce, z.double(), y.double())
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=0)
    # float32 rounding of logits near the gap: ~1e-5 per term, D terms
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-3)
    # each of the D terms of a row moves the logits by an L1 norm of at most 2
    assert grad.abs().sum(1).max() <= 2 * d + 1e-3
    # the upstream form in float32: loss clamped at 100 per term, gradient wrong
    up_loss, up_grad = grad_of(
        lambda p, t: F.binary_cross_entropy(p.softmax(1), t, reduction='sum'),
        z, y)
    assert (up_grad.double() - ref_grad).abs().max() > 0.5


def test_bad_shapes_are_named():
    from ptqat.models.bevdet.lss_view_transformer import depth_bce_from_logits
    with pytest.raises(ValueError, match=r'\(4, 1\)'):
        depth_bce_from_logits(torch.zeros(4, 1), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r'\(4, 3\) and \(4, 2\)'):
        depth_bce_from_logits(torch.zeros(4, 3), torch.zeros(4, 2))


def test_unknown_depth_loss_is_named():
    with pytest.raises(ValueError, match="'bce', 'bce_logits'.*'focal'"):
        small_vt(depth_loss='focal')


def test_view_transformer_from_logits_same_model_same_loss():
    """The same weights: the same BEV feature and loss value; ``forward``
    returns the logits, whose softmax is the 'bce' mode's depth."""
    torch.manual_seed(0)
    feats = torch.randn(2, 6, 32, 8, 22)
    cams = make_camera_inputs(2, IMG_HW)
    gt = torch.zeros(2, 6, *IMG_HW)
    gt[:, :, 40:60, 100:140] = 12.3
    gt[1, 2, 0:64, 0:32] = 3.0
    probs_vt = small_vt(loss_depth_weight=3.0).eval()
    logits_vt = small_vt(loss_depth_weight=3.0, depth_loss='bce_logits').eval()
    logits_vt.load_state_dict(probs_vt.state_dict())
    assert logits_vt.state_dict().keys() == probs_vt.state_dict().keys()
    with torch.no_grad():
        bev_p, depth_p = probs_vt(feats, img_shape=IMG_HW, **cams)
        bev_l, depth_l = logits_vt(feats, img_shape=IMG_HW, **cams)
    torch.testing.assert_close(bev_l, bev_p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(depth_l.softmax(2), depth_p, rtol=1e-5, atol=1e-7)
    assert depth_l.min() < 0  # logits, not probabilities
    torch.testing.assert_close(logits_vt.get_depth_loss(gt, depth_l),
                               probs_vt.get_depth_loss(gt, depth_p),
                               rtol=1e-4, atol=0)
