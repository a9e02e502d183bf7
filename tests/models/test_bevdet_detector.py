"""The BEVDet detector (tiny config): preprocessing, loss, predict, frames."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from bevdet_testutils import (CFG_DIR, build_model, make_batch,
                              make_camera_inputs, make_data_samples)
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes

IMG_HW = (128, 352)


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    model, _ = build_model('bevdet-tiny.py')
    model.init_weights()
    return model


def test_build_through_registry():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet3d.registry import MODELS
    from ptqat.models import (BEVDet, BEVDetCenterHead,
                              BEVDetDataPreprocessor, CustomFPN,
                              CustomResNet, FPN_LSS, LSSViewTransformer)
    cfg = Config.fromfile(osp.join(CFG_DIR, 'bevdet-tiny.py'))
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model)
    assert isinstance(model, BEVDet)
    assert isinstance(model.data_preprocessor, BEVDetDataPreprocessor)
    for name, cls in [('img_neck', CustomFPN),
                      ('img_view_transformer', LSSViewTransformer),
                      ('img_bev_encoder_backbone', CustomResNet),
                      ('img_bev_encoder_neck', FPN_LSS),
                      ('pts_bbox_head', BEVDetCenterHead)]:
        assert isinstance(getattr(model, name), cls), name
    prefixes = {k.split('.')[0] for k in model.state_dict()}
    assert prefixes == {
        'img_backbone', 'img_neck', 'img_view_transformer',
        'img_bev_encoder_backbone', 'img_bev_encoder_neck', 'pts_bbox_head'
    }


def test_tiny_size():
    model, _ = build_model('bevdet-tiny.py')
    n = sum(p.numel() for p in model.parameters())
    assert n < 2e6, n


def per_sample_data(batch=2, num_gt=4, metainfo=None):
    """What a dataloader with pseudo_collate hands to the preprocessor."""
    cams = make_camera_inputs(batch, IMG_HW)
    rng = np.random.RandomState(0)
    inputs = {'img': [torch.from_numpy(
        rng.randint(0, 256, (6, 3, *IMG_HW)).astype(np.uint8))
        for _ in range(batch)]}
    for k, v in cams.items():
        inputs[k] = [v[i].numpy() if k == 'intrins' else v[i]
                     for i in range(batch)]  # numpy and tensors mixed
    return dict(inputs=inputs,
                data_samples=make_data_samples(batch, num_gt, metainfo))


def test_data_preprocessor(tiny):
    data = per_sample_data()
    out = tiny.data_preprocessor(data, training=True)
    inputs = out['inputs']
    assert inputs['imgs'].shape == (2, 6, 3, *IMG_HW)
    assert inputs['imgs'].dtype == torch.float32
    raw = data['inputs']['img'][1][2].float()
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    torch.testing.assert_close(inputs['imgs'][1, 2], (raw - mean) / std)
    expect = dict(sensor2keyegos=(2, 6, 4, 4), ego2globals=(2, 6, 4, 4),
                  intrins=(2, 6, 3, 3), post_rots=(2, 6, 3, 3),
                  post_trans=(2, 6, 3), bda=(2, 4, 4))
    for k, shape in expect.items():
        assert inputs[k].shape == shape and inputs[k].dtype == torch.float32
    # list-of-dicts and already-batched layouts give the same result
    listed = [{k: v[i] for k, v in data['inputs'].items()} for i in range(2)]
    out2 = tiny.data_preprocessor(dict(inputs=listed), False)
    torch.testing.assert_close(out2['inputs']['imgs'], inputs['imgs'])
    batched = {k: torch.stack([torch.as_tensor(x) for x in v])
               for k, v in data['inputs'].items()}
    out3 = tiny.data_preprocessor(dict(inputs=batched), False)
    torch.testing.assert_close(out3['inputs']['intrins'], inputs['intrins'])


def test_loss_finite_with_gradients(tiny):
    tiny.train()
    tiny.zero_grad()
    inputs = make_batch(2, IMG_HW)
    losses = tiny.loss(inputs, make_data_samples(2, num_gt=5))
    assert set(losses) == {
        'task0.loss_heatmap', 'task0.loss_xy', 'task0.loss_z',
        'task0.loss_whl', 'task0.loss_yaw', 'task0.loss_vel'
    }
    for k, v in losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    total = sum(losses.values())
    assert total > 0
    total.backward()
    for name in ['img_backbone.conv1.weight',
                 'img_neck.fpn_convs.0.conv.weight',
                 'img_view_transformer.depth_net.weight',
                 'img_bev_encoder_backbone.layers.0.0.conv1.weight',
                 'img_bev_encoder_neck.up2.4.weight',
                 'pts_bbox_head.task_heads.0.heatmap.1.weight',
                 'pts_bbox_head.task_heads.0.reg.1.weight']:
        p = dict(tiny.named_parameters())[name]
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_train_step(tiny):
    """A full mmengine train_step: preprocessor, loss, backward, AdamW."""
    from mmengine.optim import OptimWrapper
    tiny.train()
    optim = OptimWrapper(torch.optim.AdamW(tiny.parameters(), lr=1e-3),
                         clip_grad=dict(max_norm=5, norm_type=2))
    w = tiny.img_view_transformer.depth_net.weight
    before = w.detach().clone()
    log = tiny.train_step(per_sample_data(num_gt=5), optim)
    assert torch.isfinite(log['loss'])
    assert not torch.equal(before, w.detach())


def test_forward_tensor_mode(tiny):
    tiny.eval()
    inputs = make_batch(1, IMG_HW)
    with torch.no_grad():
        outs = tiny(inputs, mode='tensor')
    assert isinstance(outs, tuple) and len(outs) == 1
    pred = outs[0][0]
    shapes = {k: tuple(v.shape) for k, v in pred.items()}
    assert shapes == dict(reg=(1, 2, 32, 32), height=(1, 1, 32, 32),
                          dim=(1, 3, 32, 32), rot=(1, 2, 32, 32),
                          vel=(1, 2, 32, 32), heatmap=(1, 10, 32, 32))


def test_sensor2keyegos_from_sensor2egos(tiny):
    from ptqat.models import compute_sensor2keyegos
    tiny.eval()
    inputs = make_batch(1, IMG_HW)
    # move the whole rig: ego2global of every camera = the same pose
    pose = torch.eye(4)
    pose[:3, 3] = torch.tensor([100.0, -20.0, 3.0])
    e2g = pose.expand(1, 6, 4, 4).clone()
    s2ke = compute_sensor2keyegos(inputs['sensor2keyegos'], e2g)
    torch.testing.assert_close(s2ke, inputs['sensor2keyegos'])
    alt = dict(inputs)
    alt['sensor2egos'] = alt.pop('sensor2keyegos')
    alt['ego2globals'] = e2g
    with torch.no_grad():
        a = tiny(inputs, mode='tensor')[0][0]['heatmap']
        b = tiny(alt, mode='tensor')[0][0]['heatmap']
    torch.testing.assert_close(a, b)


# --------------------------------------------------------------- frames
def rigid(yaw_deg, t):
    a = math.radians(yaw_deg)
    m = np.eye(4)
    m[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    m[:3, 3] = t
    return m


# nuScenes' LIDAR_TOP is mounted rotated by about -90 deg about z
LIDAR2KEYEGO = rigid(-90.0, [0.9, 0.0, 1.8])


def test_transform_boxes_hand_computed():
    from ptqat.models import transform_boxes
    # key-ego box: bottom (10, 5, -1), l w h = 4 2 1.5, yaw 0.3, v (2, 1)
    box = LiDARInstance3DBoxes(
        torch.tensor([[10.0, 5.0, -1.0, 4.0, 2.0, 1.5, 0.3, 2.0, 1.0]]),
        box_dim=9)
    out = transform_boxes(box, np.linalg.inv(LIDAR2KEYEGO))
    # p_lidar = Rz(+90) (p_ego - t): gravity centre (10, 5, -0.25) - t
    # = (9.1, 5, -2.05) -> (-5, 9.1, -2.05); bottom z = -2.05 - 0.75 = -2.8
    expected = torch.tensor(
        [[-5.0, 9.1, -2.8, 4.0, 2.0, 1.5, 0.3 + math.pi / 2, -1.0, 2.0]])
    assert isinstance(out, LiDARInstance3DBoxes)
    torch.testing.assert_close(out.tensor, expected, atol=1e-5, rtol=1e-5)
    # and back
    back = transform_boxes(out, LIDAR2KEYEGO)
    torch.testing.assert_close(back.tensor, box.tensor, atol=1e-5, rtol=1e-5)
    # mirror (bda flip of y): yaw -> -yaw, vy -> -vy
    flip = np.diag([1.0, -1.0, 1.0, 1.0])
    f = transform_boxes(box, flip).tensor[0]
    torch.testing.assert_close(f[[1, 6, 8]], torch.tensor([-5.0, -0.3, -1.0]))


def test_predict_frames(tiny):
    tiny.eval()
    with torch.no_grad():  # make sure some boxes pass the 0.1 threshold
        tiny.pts_bbox_head.task_heads[0].heatmap[-1].bias.fill_(0.0)
    inputs = make_batch(2, IMG_HW)
    plain = tiny.predict(inputs, make_data_samples(2))
    meta = dict(lidar2keyego=LIDAR2KEYEGO)
    lidar = tiny.predict(inputs, make_data_samples(2, metainfo=meta))
    for p, q in zip(plain, lidar):
        assert isinstance(p, Det3DDataSample)
        pi, qi = p.pred_instances_3d, q.pred_instances_3d
        assert isinstance(qi.bboxes_3d, LiDARInstance3DBoxes)
        assert qi.bboxes_3d.tensor.shape[1] == 9
        assert len(pi.bboxes_3d) > 0
        assert len(pi.bboxes_3d) == len(qi.bboxes_3d)
        torch.testing.assert_close(pi.scores_3d, qi.scores_3d)
        assert torch.equal(pi.labels_3d, qi.labels_3d)
        a, b = pi.bboxes_3d.tensor, qi.bboxes_3d.tensor
        # centres: p_lidar = Rz(+90) (p_ego - t)
        ga = pi.bboxes_3d.gravity_center - torch.tensor([0.9, 0.0, 1.8])
        gb = qi.bboxes_3d.gravity_center
        torch.testing.assert_close(gb[:, 0], -ga[:, 1], atol=1e-4, rtol=0)
        torch.testing.assert_close(gb[:, 1], ga[:, 0], atol=1e-4, rtol=0)
        torch.testing.assert_close(gb[:, 2], ga[:, 2], atol=1e-4, rtol=0)
        # yaw + 90 deg (mod 2 pi), sizes unchanged, velocity rotated
        dyaw = torch.remainder(b[:, 6] - a[:, 6] - math.pi / 2 + math.pi,
                               2 * math.pi) - math.pi
        assert dyaw.abs().max() < 1e-4
        torch.testing.assert_close(b[:, 3:6], a[:, 3:6])
        torch.testing.assert_close(b[:, 7], -a[:, 8], atol=1e-5, rtol=0)
        torch.testing.assert_close(b[:, 8], a[:, 7], atol=1e-5, rtol=0)


def test_predict_undoes_bda_with_lidar2keyego(tiny):
    """With bda != I the LiDAR-frame output is inv(bda @ lidar2keyego)."""
    from ptqat.models import BEVDet, transform_boxes
    from mmengine.structures import InstanceData
    bda = torch.as_tensor(rigid(30.0, [0, 0, 0]), dtype=torch.float32)
    box = LiDARInstance3DBoxes(
        torch.tensor([[3.0, -4.0, -1.0, 4.0, 2.0, 1.5, 0.5, 1.0, 0.0]]),
        box_dim=9)
    res = InstanceData(bboxes_3d=box, scores_3d=torch.ones(1),
                       labels_3d=torch.zeros(1, dtype=torch.int))
    sample = Det3DDataSample(metainfo=dict(lidar2keyego=LIDAR2KEYEGO))
    out = BEVDet.to_output_frame(res, sample, bda).bboxes_3d
    # forward again: lidar -> key ego -> bda must give the BEV box back
    m = bda.double().numpy() @ LIDAR2KEYEGO
    torch.testing.assert_close(
        transform_boxes(out, m).tensor, box.tensor, atol=1e-5, rtol=1e-5)


def test_test_step_with_numpy_metainfo(tiny):
    tiny.eval()
    data = per_sample_data(batch=1, metainfo=dict(lidar2keyego=LIDAR2KEYEGO))
    out = tiny.test_step(data)
    assert len(out) == 1
    inst = out[0].pred_instances_3d
    assert isinstance(inst.bboxes_3d, LiDARInstance3DBoxes)
    assert inst.scores_3d.shape == inst.labels_3d.shape
