"""DETR3D-style pieces shared by BEVFormer: assigner, L1 cost, box codes, NMS-free coder,
rotation and GridMask."""
import math

import pytest
import torch


def _init_scope():
    from mmengine.registry import init_default_scope

    import ptqat.plugin  # noqa: F401
    init_default_scope('mmdet3d')


def _assigner():
    _init_scope()
    from mmdet3d.registry import TASK_UTILS
    return TASK_UTILS.build(dict(
        type='HungarianAssigner3D', cls_cost=dict(type='mmdet.FocalLossCost', weight=2.0),
        reg_cost=dict(type='BBox3DL1Cost', weight=0.25),
        iou_cost=dict(type='mmdet.IoUCost', weight=0.0),
        pc_range=[-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]))


def test_assigner_hand_made_cost_matrix():
    """Greedy would take (0, 0) at cost 1 and end at 6; the optimum is 1.5 + 2 = 3.5."""
    from ptqat.models.detr3d import HungarianAssigner3D
    cost = torch.tensor([[1.0, 2.0], [1.5, 10.0], [5.0, 5.0]])
    res = HungarianAssigner3D.assign_from_cost(cost, torch.tensor([7, 3]))
    assert res.gt_inds.tolist() == [2, 1, 0]  # 1-based GT index, 0 = background
    assert res.labels.tolist() == [3, 7, -1]
    assert res.num_gts == 2


def test_assigner_matches_predictions_to_their_boxes():
    from ptqat.models.detr3d import normalize_bbox
    gt = torch.tensor([[10.0, 5.0, -1.0, 4.0, 2.0, 1.5, 0.3, 1.0, 0.0],
                       [-20.0, 3.0, 0.0, 0.8, 0.7, 1.7, -2.0, 0.0, 0.5],
                       [0.0, -30.0, -0.5, 10.0, 2.5, 3.0, 1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 8, 3])
    order = [2, 0, 1]  # prediction i is GT order[i]; a 4th prediction is background
    preds = normalize_bbox(gt[order])
    preds = torch.cat([preds, preds[:1] + 30.0])
    cls = torch.full((4, 10), -5.0)
    for i, g in enumerate(order):
        cls[i, labels[g]] = 5.0
    res = _assigner().assign(preds, cls, gt, labels)
    assert res.gt_inds.tolist() == [3, 1, 2, 0]
    assert res.labels.tolist() == [3, 0, 8, -1]


def test_assigner_rejects_iou_cost_and_handles_no_gt():
    _init_scope()
    from mmdet3d.registry import TASK_UTILS
    with pytest.raises(ValueError, match='iou_cost weight'):
        TASK_UTILS.build(dict(type='HungarianAssigner3D',
                              cls_cost=dict(type='mmdet.FocalLossCost', weight=2.0),
                              reg_cost=dict(type='BBox3DL1Cost'),
                              iou_cost=dict(type='mmdet.IoUCost', weight=1.0)))
    res = _assigner().assign(torch.zeros(5, 10), torch.zeros(5, 10), torch.zeros(0, 9),
                             torch.zeros(0, dtype=torch.long))
    assert res.gt_inds.tolist() == [0] * 5


def test_bbox3d_l1_cost():
    from ptqat.models.detr3d import BBox3DL1Cost
    c = BBox3DL1Cost(weight=0.5)(torch.tensor([[0.0, 1.0], [2.0, 2.0]]),
                                 torch.tensor([[1.0, 1.0], [0.0, 0.0], [2.0, 5.0]]))
    assert c.tolist() == [[0.5, 0.5, 3.0], [1.0, 2.0, 1.5]]


def test_box_code_round_trip_and_layout():
    from ptqat.models.detr3d import denormalize_bbox, normalize_bbox
    box = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.7, 0.1, -0.2]])
    code = normalize_bbox(box)
    expected = [1.0, 2.0, math.log(4), math.log(5), 3.0, math.log(6), math.sin(0.7),
                math.cos(0.7), 0.1, -0.2]
    torch.testing.assert_close(code[0], torch.tensor(expected))
    torch.testing.assert_close(denormalize_bbox(code), box)


def test_nms_free_coder_topk_and_range():
    from ptqat.models.detr3d import NMSFreeCoder, normalize_bbox
    coder = NMSFreeCoder(pc_range=[-51.2, -51.2, -5, 51.2, 51.2, 3], max_num=3,
                         post_center_range=[-61.2, -61.2, -10, 61.2, 61.2, 10], num_classes=4)
    boxes = torch.tensor([[0.0, 0, 0, 1, 1, 1, 0, 0, 0], [70.0, 0, 0, 1, 1, 1, 0, 0, 0],
                          [5.0, 5, 0, 2, 2, 2, 0.5, 1, 1]])
    cls = torch.full((3, 4), -10.0)
    cls[0, 1], cls[1, 2], cls[2, 3], cls[2, 0] = 3.0, 4.0, 2.0, 1.0
    out = coder.decode(dict(all_cls_scores=cls[None, None], all_bbox_preds=normalize_bbox(
        boxes)[None, None]))[0]
    # top 3: (1, cls 2) out of range -> dropped; (0, cls 1); (2, cls 3)
    assert out['labels'].tolist() == [1, 3]
    torch.testing.assert_close(out['bboxes'], boxes[[0, 2]])
    torch.testing.assert_close(out['scores'], torch.sigmoid(torch.tensor([3.0, 2.0])))


def test_rotate_moves_a_marked_cell_90_degrees_counter_clockwise():
    """torchvision's convention: positive = counter-clockwise as displayed (rows down)."""
    from ptqat.models.detr3d import rotate
    img = torch.zeros(1, 8, 8)
    img[0, 3, 6] = 1.0  # centre (6.5, 3.5): 2.5 right, 0.5 up of the centre (4, 4)
    out = rotate(img, 90.0)
    # counter-clockwise: right -> up, up -> left: (2.5, -0.5) -> (-0.5, -2.5) = pixel (3, 1)
    assert out.sum() == 1.0 and out[0, 1, 3] == 1.0
    # about another centre (2, 2): pixel (col 3, row 2) = (1.5, 0.5) -> (0.5, -1.5)
    img = torch.zeros(1, 8, 8)
    img[0, 2, 3] = 1.0
    out = rotate(img, 90.0, center=(2, 2))
    assert out.sum() == 1.0 and out[0, 0, 2] == 1.0
    # a full turn is the identity; -90 undoes +90
    x = torch.rand(2, 6, 6)
    torch.testing.assert_close(rotate(rotate(x, 90.0), -90.0), x)
    torch.testing.assert_close(rotate(x, 360.0), x)


def test_grid_mask_train_only():
    from ptqat.models.detr3d import GridMask
    gm = GridMask(prob=1.0)
    x = torch.ones(2, 3, 32, 48)
    gm.eval()
    assert torch.equal(gm(x), x)
    gm.train()
    y = gm(x)
    assert y.shape == x.shape and 0 < float(y.mean()) < 1
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
