"""BEVFormer's temporal handling: prev_bev rotation and shift, CAN-bus deltas, the
training queue (history without gradient) and the test-time cache keyed by scene."""
import math

import numpy as np
import pytest
import torch

from bevformer_testutils import build_bevformer, make_meta

HW = (64, 96)


@pytest.fixture(scope='module')
def model():
    m, _ = build_bevformer()
    m.init_weights()
    return m


def _sample(meta, gt=True):
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    from mmengine.structures import InstanceData
    s = Det3DDataSample(metainfo=meta)
    if gt:
        g = InstanceData()
        g.bboxes_3d = LiDARInstance3DBoxes(
            torch.tensor([[10.0, 2.0, -1.0, 4.0, 2.0, 1.5, 0.3, 1.0, 0.0]]), box_dim=9)
        g.labels_3d = torch.tensor([0])
        s.gt_instances_3d = g
    return s


def test_rotate_prev_bev_moves_marked_cell():
    """A yaw delta of +90° about the BEV centre moves a marked cell a quarter turn
    counter-clockwise in (col, row) display coordinates."""
    from ptqat.models.bevformer import rotate_prev_bev
    H = W = 8
    prev = torch.zeros(H * W, 1, 3)
    prev[3 * W + 6, 0] = torch.tensor([1.0, 2.0, 3.0])  # row 3, col 6
    out = rotate_prev_bev(prev, [90.0], H, W, center=[4, 4])
    hit = (out[:, 0].abs().sum(-1) > 0).nonzero().flatten().tolist()
    assert hit == [1 * W + 3]  # row 1, col 3
    assert out[1 * W + 3, 0].tolist() == [1.0, 2.0, 3.0]
    # the input is not modified in place (the cached BEV stays as it was)
    assert prev[3 * W + 6, 0, 0] == 1.0


def test_bev_shift_formula():
    """shift = |t| (sin, cos)(ego_yaw - atan2(dy, dx)) / cell / size (upstream)."""
    from ptqat.models.bevformer import bev_shift
    cb = torch.zeros(2, 18, dtype=torch.float64)
    cb[0, 1], cb[0, -2] = 5.12, math.pi / 2  # yaw 90°, moving +y: straight ahead
    cb[1, 1] = 5.12  # yaw 0, moving +y: to the left
    s = bev_shift(cb, 200, 200, (0.512, 0.512))
    torch.testing.assert_close(s, torch.tensor([[0.0, 0.05], [-0.05, 0.0]],
                                               dtype=torch.float64))


def test_can_bus_deltas_along_a_queue():
    from ptqat.models.bevformer import can_bus_deltas
    metas = [make_meta('a', 0, (1, 2, 0), 10.0), make_meta('a', 1, (2, 4, 0), 15.0),
             make_meta('b', 0, (9, 9, 0), 50.0), make_meta('b', 1, (10, 9, 0), 40.0)]
    out = can_bus_deltas(metas)
    assert [m['prev_bev_exists'] for m in out] == [False, True, False, True]
    assert out[0]['can_bus'][:3].tolist() == [0, 0, 0] and out[0]['can_bus'][-1] == 0
    assert out[1]['can_bus'][:3].tolist() == [1, 2, 0] and out[1]['can_bus'][-1] == 5.0
    assert out[3]['can_bus'][:3].tolist() == [1, 0, 0] and out[3]['can_bus'][-1] == -10.0
    # the yaw in radians is kept (the shift needs the absolute ego yaw)
    assert out[1]['can_bus'][-2] == pytest.approx(math.radians(15.0))
    assert metas[1]['can_bus'][0] == 2  # inputs untouched


def test_history_frames_get_no_gradient(model):
    model.train()
    torch.manual_seed(0)
    imgs = torch.randn(1, 3, 6, 3, *HW, requires_grad=True)
    hist = [make_meta('a', 0, (0, 0, 0), 0.0, HW), make_meta('a', 1, (1, 0, 0), 2.0, HW)]
    meta = dict(make_meta('a', 2, (2, 0, 0), 4.0, HW), queue_metas=hist)
    modes = []
    orig = model.pts_bbox_head.forward

    def spy(feats, metas, prev_bev=None, only_bev=False):
        modes.append((only_bev, model.training, torch.is_grad_enabled(), prev_bev is None))
        return orig(feats, metas, prev_bev, only_bev)

    model.pts_bbox_head.forward = spy
    try:
        losses = model.loss({'imgs': imgs}, [_sample(meta)])
    finally:
        del model.pts_bbox_head.forward
    sum(losses.values()).backward()
    assert imgs.grad[:, :2].abs().sum() == 0  # history frames
    assert imgs.grad[:, 2].abs().sum() > 0  # current frame
    # two history BEVs in eval mode without grad (the first without a previous BEV), then
    # the current frame in training mode with the history BEV
    assert modes == [(True, False, False, True), (True, False, False, False),
                     (False, True, True, False)]
    assert model.training


def test_queue_metas_must_match_the_queue(model):
    model.train()
    imgs = torch.randn(1, 3, 6, 3, *HW)
    meta = dict(make_meta('a', 2, img_hw=HW), queue_metas=[make_meta('a', 1, img_hw=HW)])
    with pytest.raises(ValueError, match='queue of 3 frames needs 2 queue_metas'):
        model.loss({'imgs': imgs}, [_sample(meta)])


def _predict(model, meta, img):
    with torch.no_grad():
        out = model.predict({'imgs': img}, [_sample(meta, gt=False)])
    return out[0].pred_instances_3d


def test_test_cache_resets_at_a_scene_start(model):
    model.eval()
    torch.manual_seed(0)
    imgs = [torch.randn(1, 6, 3, *HW) for _ in range(3)]
    a0, a1 = make_meta('a', 0, (0, 0, 0), 0.0, HW), make_meta('a', 1, (1, 0, 0), 3.0, HW)
    b0 = make_meta('b', 0, (5, 5, 0), 30.0, HW)
    model.reset_test_cache()
    _predict(model, a0, imgs[0])
    with_history = _predict(model, a1, imgs[1])
    after_scene_change = _predict(model, b0, imgs[2])
    model.reset_test_cache()
    fresh_a1 = _predict(model, dict(a1, frame_idx=0), imgs[1])
    model.reset_test_cache()
    fresh_b0 = _predict(model, b0, imgs[2])
    # a1 used a0's BEV; b0 (new scene) used none: identical to a fresh run
    assert not torch.allclose(with_history.scores_3d, fresh_a1.scores_3d)
    torch.testing.assert_close(after_scene_change.scores_3d, fresh_b0.scores_3d)
    torch.testing.assert_close(after_scene_change.bboxes_3d.tensor, fresh_b0.bboxes_3d.tensor)


def test_test_cache_rejects_bad_input(model):
    model.eval()
    img = torch.randn(1, 6, 3, *HW)
    model.reset_test_cache()
    with pytest.raises(ValueError, match='not in scene order.*starts at frame_idx 2'):
        _predict(model, make_meta('a', 2, img_hw=HW), img)
    model.reset_test_cache()
    _predict(model, make_meta('a', 0, img_hw=HW), img)
    with pytest.raises(ValueError, match='frame_idx 2 follows 0'):
        _predict(model, make_meta('a', 2, img_hw=HW), img)
    with pytest.raises(ValueError, match='test batch size 1.*got 2'):
        with torch.no_grad():
            model.predict({'imgs': img.expand(2, -1, -1, -1, -1)},
                          [_sample(make_meta('c', 0, img_hw=HW), False)] * 2)
    meta = make_meta('d', 0, img_hw=HW)
    del meta['frame_idx']
    with pytest.raises(KeyError, match='frame_idx'):
        _predict(model, meta, img)


def test_test_cache_resets_when_a_scene_is_run_again(model):
    """A second validation pass over the same scene starts again at frame 0."""
    model.eval()
    img = torch.randn(1, 6, 3, *HW)
    model.reset_test_cache()
    first = _predict(model, make_meta('a', 0, img_hw=HW), img)
    _predict(model, make_meta('a', 1, img_hw=HW), img)
    again = _predict(model, make_meta('a', 0, img_hw=HW), img)
    torch.testing.assert_close(first.scores_3d, again.scores_3d)


@pytest.mark.parametrize('both', [False, True])
def test_shift_both_refs_option(both):
    """BEVFormer v1.0 (released checkpoints) aliases shift_ref_2d and ref_2d, so the current
    BEV's reference points are shifted too; master shifts only the previous BEV's."""
    model, _ = build_bevformer()
    enc = model.pts_bbox_head.transformer.encoder
    enc.shift_both_refs = both
    seen = {}

    def grab(mod, args, kwargs):
        seen['ref_2d'] = kwargs['ref_2d'].clone()

    h = enc.layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    C, H, W = enc.embed_dims, 4, 5
    shift = torch.tensor([[0.1, -0.2]])
    with torch.no_grad():
        enc(torch.randn(H * W, 1, C), torch.randn(6, 6, 1, C), torch.randn(6, 6, 1, C),
            bev_h=H, bev_w=W, bev_pos=torch.randn(H * W, 1, C),
            spatial_shapes=torch.tensor([[2, 3]]), level_start_index=torch.tensor([0]),
            img_metas=[make_meta(img_hw=HW)], prev_bev=torch.randn(H * W, 1, C), shift=shift)
    h.remove()
    from ptqat.models.bevformer.encoder import reference_points_2d
    ref = reference_points_2d(H, W, 1)
    prev_ref, cur_ref = seen['ref_2d'][0], seen['ref_2d'][1]
    torch.testing.assert_close(prev_ref, ref[0] + shift[0])
    torch.testing.assert_close(cur_ref, ref[0] + shift[0] if both else ref[0])
