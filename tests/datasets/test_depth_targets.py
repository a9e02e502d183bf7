"""LiDAR depth targets (PointToMultiViewDepth) and BEVDepth's binned depth loss targets.

The end-to-end check does not trust the projection alone: LiDAR points that lie inside a GT
car box must land, in the augmented (resized, cropped, flipped, rotated) image, on pixels
that show the car's colour, with the point's own depth in ``gt_depth``, and the feature cell
they fall in must carry the depth bin of the car (or a nearer one).
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTH_CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'nus-synth-bevdet.py')
TINY_MODEL_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'bevdet-tiny.py')
GRID = {'x': [-51.2, 51.2, 3.2], 'y': [-51.2, 51.2, 3.2], 'z': [-5, 3, 8],
        'depth': [1.0, 60.0, 2.0]}


def test_nearest_point_wins_and_range():
    from ptqat.datasets.transforms import project_to_depth_map
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    pts = np.array([[0.0, 0.0, 10.0],    # -> pixel (50, 40), depth 10
                    [0.0, 0.0, 5.0],     # same pixel, nearer: wins
                    [0.2, 0.1, 20.0],    # -> (51, 40.5 -> 40)... depth 20
                    [0.0, 0.0, 70.0],    # beyond max depth: dropped
                    [0.0, 0.0, -3.0],    # behind the camera: dropped
                    [50.0, 0.0, 10.0]])  # outside the image: dropped
    out = project_to_depth_map(pts, k, np.eye(3), np.zeros(3), (80, 100), (1.0, 60.0))
    assert out[40, 50] == pytest.approx(5.0)
    assert out[40, 51] == pytest.approx(20.0)
    assert (out > 0).sum() == 2
    # a horizontal flip as image augmentation: u' = W - u
    flip = np.diag([-1.0, 1.0, 1.0])
    out_f = project_to_depth_map(pts, k, flip, np.array([99.0, 0.0, 0.0]), (80, 100),
                                 (1.0, 60.0))
    assert out_f[40, 49] == pytest.approx(5.0) and out_f[40, 48] == pytest.approx(20.0)


def test_bad_arguments_are_named():
    from ptqat.datasets.transforms import PointToMultiViewDepth
    with pytest.raises(ValueError, match='downsample'):
        PointToMultiViewDepth(GRID, downsample=0)
    with pytest.raises(ValueError, match='depth'):
        PointToMultiViewDepth({'x': [0, 1, 1]})
    with pytest.raises(KeyError, match='points'):
        PointToMultiViewDepth(GRID)({'img': np.zeros((6, 3, 8, 8))})


def test_downsampled_bins_take_nearest_point():
    from ptqat.models.bevdet import LSSViewTransformer
    vt = LSSViewTransformer(GRID, downsample=4, in_channels=8, out_channels=4,
                            loss_depth_weight=3.0)
    gt = torch.zeros(1, 1, 8, 8)
    gt[0, 0, 1, 1] = 12.5      # cell (0, 0): bins of 2 m from 1 m -> bin 5
    gt[0, 0, 2, 3] = 30.0      # same cell, farther: ignored
    gt[0, 0, 5, 6] = 65.0      # cell (1, 1): beyond 60 m -> no target
    gt[0, 0, 6, 1] = 1.0       # cell (1, 0): first bin
    target = vt.get_downsampled_gt_depth(gt)
    assert target.shape == (4, vt.D)
    assert target[0].argmax() == 5 and target[0].sum() == 1
    assert target[1].sum() == 0 and target[3].sum() == 0
    assert target[2].argmax() == 0
    # the loss: 0 for a perfect depth distribution, positive otherwise, scaled by the weight
    perfect = torch.zeros(1, 1, vt.D, 2, 2)
    perfect.view(vt.D, 4)[:, :] = target.t()
    perfect[0, 0, 0, 0, 1] = 1.0  # cells without target may hold anything
    assert float(vt.get_depth_loss(gt, perfect)) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((1, 1, vt.D, 2, 2), 1.0 / vt.D, requires_grad=True)
    loss = vt.get_depth_loss(gt, uniform)
    assert float(loss.detach()) > 0
    loss.backward()
    assert uniform.grad.abs().sum() > 0
    vt.loss_depth_weight = 1.0
    assert float(vt.get_depth_loss(gt, uniform).detach()) == pytest.approx(
        float(loss.detach()) / 3.0, rel=1e-5)
    with pytest.raises(ValueError, match='multiple'):
        vt.get_downsampled_gt_depth(torch.zeros(1, 1, 6, 8))


@pytest.fixture(scope='module')
def depth_results(synthetic_root):
    """A few train samples through image aug -> points -> depth targets -> annotations."""
    import ptqat.plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet3d.registry import DATASETS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(SYNTH_CFG)
    data_config = copy.deepcopy(cfg.data_config)
    data_config.update(input_size=(128, 352), resize=(-0.06, 0.11), rot=(-8.0, 8.0),
                       flip=True, crop_h=(0.0, 0.1))
    pipeline = [
        dict(type='PrepareImageInputs', is_train=True, data_config=data_config),
        dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5),
        dict(type='PointToMultiViewDepth', grid_config=GRID),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    ]
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(data_root=synthetic_root[0], pipeline=pipeline, filter_empty_gt=False,
                  modality=dict(use_lidar=True, use_camera=True))
    dataset = DATASETS.build(ds_cfg)
    np.random.seed(1)
    return [dataset[i] for i in range(min(4, len(dataset)))]


def _car_points_in_images(res):
    """(camera, u, v, depth) of every LiDAR point inside a GT car box."""
    boxes = res['gt_bboxes_3d']
    cars = boxes.tensor[torch.as_tensor(res['gt_labels_3d'] == 0)].numpy().astype(np.float64)
    pts = res['points'].tensor[:, :3].numpy().astype(np.float64)
    inside = np.zeros(len(pts), bool)
    for x, y, z, dx, dy, dz, yaw in cars[:, :7]:  # bottom centre, (l, w, h), yaw about z
        rel = pts - (x, y, z)
        lx = rel[:, 0] * np.cos(yaw) + rel[:, 1] * np.sin(yaw)
        ly = -rel[:, 0] * np.sin(yaw) + rel[:, 1] * np.cos(yaw)
        inside |= (np.abs(lx) <= dx / 2) & (np.abs(ly) <= dy / 2) & (rel[:, 2] >= 0) & (
            rel[:, 2] <= dz)
    p = pts[inside]
    l2g = (np.asarray(res['ego2global']) @ np.asarray(res['lidar_points']['lidar2ego']))
    p = p @ l2g[:3, :3].T + l2g[:3, 3]
    hits = []
    for c in range(len(res['cam_names'])):
        c2g = np.asarray(res['ego2globals'][c], np.float64) @ np.asarray(
            res['sensor2egos'][c], np.float64)
        g2c = np.linalg.inv(c2g)
        cam = p @ g2c[:3, :3].T + g2c[:3, 3]
        cam = cam[cam[:, 2] > 1.0]
        uv = cam @ np.asarray(res['intrins'][c], np.float64).T
        uvd = np.concatenate([uv[:, :2] / uv[:, 2:], cam[:, 2:]], 1)
        uvd = uvd @ np.asarray(res['post_rots'][c], np.float64).T + np.asarray(
            res['post_trans'][c], np.float64)
        H, W = res['gt_depth'].shape[-2:]
        u, v = np.round(uvd[:, 0]).astype(int), np.round(uvd[:, 1]).astype(int)
        ok = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (uvd[:, 2] < 60)
        hits += [(c, a, b, d) for a, b, d in zip(u[ok], v[ok], uvd[ok, 2])]
    return hits


def test_depth_targets_land_on_the_objects(depth_results):
    from ptqat.models.bevdet import LSSViewTransformer
    vt = LSSViewTransformer(GRID, downsample=16, in_channels=8, out_channels=4)
    n_hits = n_depth = n_colour = 0
    for res in depth_results:
        gt = res['gt_depth']
        assert gt.shape == (6,) + tuple(res['img'].shape[-2:]) and gt.dtype == np.float32
        assert 0.005 < (gt > 0).mean() < 0.5
        target = vt.get_downsampled_gt_depth(torch.from_numpy(gt)[None])
        bins, has = target.argmax(1), target.sum(1) > 0
        h, w = gt.shape[1] // 16, gt.shape[2] // 16
        for c, u, v, d in _car_points_in_images(res):
            n_hits += 1
            # the nearest point of the pixel is this one or one in front of it
            assert 0 < gt[c, v, u] <= d + 1e-3
            if abs(gt[c, v, u] - d) < 0.05:
                n_depth += 1
                r, g, b = (int(x) for x in res['img'][c, :, v, u])
                n_colour += r > g + 30 and r > b + 30  # the car red (200, 40, 40), shaded
                cell = c * h * w + (v // 16) * w + (u // 16)
                assert has[cell] and bins[cell] <= int((d - 1.0) // 2.0)
    assert n_hits > 50, 'the fixture should contain visible cars with LiDAR points'
    assert n_depth / n_hits > 0.6
    assert n_colour / n_depth > 0.8
