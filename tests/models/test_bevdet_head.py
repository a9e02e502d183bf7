"""BEVDetCenterHead: Scale-NMS and the task-specific L1 loss."""
import copy
import math

import pytest
import torch

from bevdet_testutils import load_model_cfg, random_gt_instances
from mmdet3d.registry import MODELS
from mmdet3d.structures import LiDARInstance3DBoxes

PED, BUS, CAR = 8, 3, 0  # BEVDet class order


def build_head(cfg_name='bevdet-r50.py', **test_overrides):
    cfg = load_model_cfg(cfg_name)
    head_cfg = copy.deepcopy(cfg.model.pts_bbox_head)
    test_cfg = copy.deepcopy(cfg.model.test_cfg.pts)
    test_cfg.update(test_overrides)
    head_cfg.update(train_cfg=cfg.model.train_cfg.pts, test_cfg=test_cfg)
    head = MODELS.build(head_cfg)
    head.eval()
    return head


def boxes9(rows):
    """(x, y, z, l, w, h, yaw) rows -> (M, 9) gravity-centre boxes."""
    t = torch.tensor(rows, dtype=torch.float32)
    return torch.cat([t, torch.zeros(len(rows), 2)], dim=1)


# Two 0.9 x 0.9 m boxes whose centres are 0.8 m apart along x:
#   IoU at the original size   = (0.1*0.9) / (2*0.81 - 0.09)      = 0.059
#   IoU scaled by 1.5 (1.35 m) = (0.55*1.35) / (2*1.8225 - 0.7425) = 0.256
# Two 10 x 3 m boxes 4 m apart along their length:
#   IoU at the original size   = (6*3) / (60 - 18) = 0.43
#   IoU scaled by 0.4 (4 x 1.2) = 0 (they just touch)
SMALL_PAIR = [[0.0, 0.0, 0.0, 0.9, 0.9, 1.7, 0.0],
              [0.8, 0.0, 0.0, 0.9, 0.9, 1.7, 0.0]]
BIG_PAIR = [[0.0, 0.0, 0.0, 10.0, 3.0, 3.5, 0.0],
            [4.0, 0.0, 0.0, 10.0, 3.0, 3.5, 0.0]]


@pytest.mark.parametrize('rows, label, kept_scaled, kept_plain', [
    (SMALL_PAIR, PED, 1, 2),  # factor 1.5: neighbours now overlap -> 1 box
    (SMALL_PAIR, CAR, 2, 2),  # factor 1.0: unchanged, both survive
    (BIG_PAIR, BUS, 2, 1),  # factor 0.4: shrunk, both survive
])
def test_scale_nms_per_class(rows, label, kept_scaled, kept_plain):
    scaled = build_head()  # official nms_rescale_factor, nms_thr 0.2
    plain = build_head(nms_rescale_factor=None)
    boxes = boxes9(rows)
    before = boxes.clone()
    scores = torch.tensor([0.9, 0.8])
    labels = torch.tensor([label, label])
    keep = scaled._nms_single(boxes, scores, labels, 0, 'rotate')
    assert len(keep) == kept_scaled
    assert keep[0].item() == 0  # the best score always survives
    assert len(plain._nms_single(boxes, scores, labels, 0,
                                 'rotate')) == kept_plain
    assert torch.equal(boxes, before)  # sizes are only scaled for the IoU


def test_scale_nms_factor_table():
    head = build_head()
    labels = torch.arange(10)
    f = head.rescale_factors(labels, 0)
    torch.testing.assert_close(
        f, torch.tensor([1.0, 0.7, 0.7, 0.4, 0.55, 1.1, 1.0, 1.0, 1.5, 3.5]))
    head.test_cfg['nms_rescale_factor'] = [2.0]  # one factor for the task
    assert torch.all(head.rescale_factors(labels, 0) == 2.0)


def test_scale_nms_is_class_agnostic_within_task():
    head = build_head()
    # a car and a motorcycle (both factor 1.0) almost on top of each other:
    # different classes, but BEVDet's NMS runs over all classes of a task
    boxes = boxes9([[0.0, 0.0, 0.0, 2.0, 2.0, 1.5, 0.0],
                    [0.1, 0.0, 0.0, 2.0, 2.0, 1.5, 0.0]])
    keep = head._nms_single(boxes, torch.tensor([0.5, 0.9]),
                            torch.tensor([CAR, 6]), 0, 'rotate')
    assert keep.tolist() == [1]
    # a pedestrian (x1.5 -> 0.75 m) inside a cone (x3.5 -> 1.75 m):
    # IoU of the rescaled boxes 0.5625 / 3.0625 = 0.18 < 0.2 -> both kept
    boxes = boxes9([[0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 0.0],
                    [0.1, 0.0, 0.0, 0.5, 0.5, 1.0, 0.0]])
    keep = head._nms_single(boxes, torch.tensor([0.5, 0.9]),
                            torch.tensor([PED, 9]), 0, 'rotate')
    assert keep.tolist() == [1, 0]


def test_circle_nms():
    head = build_head(nms_type=['circle'], min_radius=[1.0])
    boxes = boxes9([[0.0, 0.0, 0.0, 1, 1, 1, 0.0],
                    [0.5, 0.0, 0.0, 1, 1, 1, 0.0],   # dist^2 0.25 <= 1
                    [3.0, 0.0, 0.0, 1, 1, 1, 0.0]])  # dist^2 9 > 1
    keep = head._nms_single(boxes, torch.tensor([0.9, 0.8, 0.7]),
                            torch.zeros(3, dtype=torch.long), 0, 'circle')
    assert keep.tolist() == [0, 2]


def make_preds(head, peaks, dim=0.9, height=1.7, yaw=0.0, size=128):
    """Head outputs with heatmap peaks ``[(cls, iy, ix, logit), ...]``."""
    hm = torch.full((1, 10, size, size), -10.0)
    for cls, iy, ix, logit in peaks:
        hm[0, cls, iy, ix] = logit
    pred = dict(
        reg=torch.full((1, 2, size, size), 0.5),
        height=torch.full((1, 1, size, size), 0.3),
        dim=torch.log(torch.tensor([dim, dim, height])).view(1, 3, 1, 1)
        .expand(1, 3, size, size).clone(),
        rot=torch.cat([torch.full((1, 1, size, size), math.sin(yaw)),
                       torch.full((1, 1, size, size), math.cos(yaw))], 1),
        vel=torch.zeros(1, 2, size, size),
        heatmap=hm)
    return ([pred], )


@pytest.mark.parametrize('cls, n_out', [(PED, 1), (CAR, 2)])
def test_predict_by_feat_scale_nms(cls, n_out):
    """Decoded neighbours 0.8 m apart (adjacent 0.8 m cells), 0.9 m wide."""
    head = build_head()
    preds = make_preds(head, [(cls, 64, 64, 5.0), (cls, 64, 65, 4.0)])
    meta = dict(box_type_3d=LiDARInstance3DBoxes)
    res = head.predict_by_feat(preds, [meta])[0]
    assert isinstance(res.bboxes_3d, LiDARInstance3DBoxes)
    assert len(res.bboxes_3d) == n_out
    t = res.bboxes_3d.tensor
    # centre of cell (64, 64) + offset 0.5: (64.5 * 0.8 - 51.2) = 0.4 m
    assert t[0, 0].item() == pytest.approx(0.4, abs=1e-5)
    assert t[0, 1].item() == pytest.approx(0.4, abs=1e-5)
    # sizes are the decoded ones (not rescaled), z is the bottom centre
    torch.testing.assert_close(t[:, 3:6], torch.tensor([[0.9, 0.9, 1.7]])
                               .expand(n_out, 3), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(t[:, 2], torch.full((n_out, ), 0.3 - 0.85))
    assert res.labels_3d.tolist() == [cls] * n_out
    assert res.scores_3d[0] > 0.99


def test_task_specific_loss_splits_plain_l1():
    torch.manual_seed(0)
    head = build_head('bevdet-tiny.py')
    head.train()
    feats = [torch.randn(2, 32, 32, 32)]
    gts = [random_gt_instances(6, seed=s) for s in range(2)]
    outs = head(feats)
    split = head.loss_by_feat(outs, gts)
    assert set(split) == {
        'task0.loss_heatmap', 'task0.loss_xy', 'task0.loss_z',
        'task0.loss_whl', 'task0.loss_yaw', 'task0.loss_vel'
    }
    head.task_specific = False
    plain = head.loss_by_feat(outs, gts)
    assert set(plain) == {'task0.loss_heatmap', 'task0.loss_bbox'}
    total = sum(v for k, v in split.items() if k != 'task0.loss_heatmap')
    torch.testing.assert_close(total, plain['task0.loss_bbox'])
    torch.testing.assert_close(split['task0.loss_heatmap'],
                               plain['task0.loss_heatmap'])
    # outputs are not modified in place by the loss
    assert 'anno_box' not in outs[0][0]


def _targets_equal(a, b):
    assert len(a) == len(b) == 4
    for per_task_a, per_task_b in zip(a, b):
        assert len(per_task_a) == len(per_task_b)
        for x, y in zip(per_task_a, per_task_b):
            assert x.device == y.device and x.dtype == y.dtype
            assert torch.equal(x, y)


def test_targets_on_cpu_are_mmdet3ds():
    from mmdet3d.models.dense_heads.centerpoint_head import CenterHead
    head = build_head()
    gts = [random_gt_instances(n, seed=s) for s, n in enumerate((7, 0, 12))]
    _targets_equal(head.get_targets(gts), CenterHead.get_targets(head, gts))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device (run on the GPU)')
def test_targets_of_gpu_boxes_are_drawn_on_cpu_and_equal():
    """GPU boxes: the targets come back on the GPU, equal to those of the same boxes on CPU."""
    head = build_head()
    gts = [random_gt_instances(n, seed=s) for s, n in enumerate((7, 0, 12))]
    on_cpu = head.get_targets(gts)
    on_gpu = head.get_targets([gt.to('cuda') for gt in gts])
    assert all(t.device.type == 'cuda' for per_task in on_gpu for t in per_task)
    _targets_equal(tuple([t.cpu() for t in per_task] for per_task in on_gpu), on_cpu)
