"""BEVFormer data pieces: CAN bus from the ego pose, lidar2img of scaled images, the queue
draw and the scene ordering of BEVFormerNuScenesDataset."""
import math

import numpy as np
import pytest


def _pose(yaw_deg, t=(1.0, 2.0, 3.0)):
    y = math.radians(yaw_deg)
    m = np.eye(4)
    m[:2, :2] = [[math.cos(y), -math.sin(y)], [math.sin(y), math.cos(y)]]
    m[:3, 3] = t
    return m


@pytest.mark.parametrize('yaw', [0.0, 30.0, 179.0, -90.0])
def test_can_bus_from_pose(yaw):
    from ptqat.datasets.bevformer_nuscenes import can_bus_from_pose
    raw = np.arange(18, dtype=np.float64)
    cb = can_bus_from_pose(raw, _pose(yaw))
    assert cb[:3].tolist() == [1.0, 2.0, 3.0]
    expected = yaw % 360  # in [0, 360)
    assert cb[-1] == pytest.approx(expected) and cb[-2] == pytest.approx(math.radians(expected))
    w, z = cb[3], cb[6]  # quaternion of a pure yaw: (cos y/2, 0, 0, sin y/2) up to sign
    assert abs(abs(w) - abs(math.cos(math.radians(yaw) / 2))) < 1e-9
    assert abs(abs(z) - abs(math.sin(math.radians(yaw) / 2))) < 1e-9
    assert cb[7:16].tolist() == raw[7:16].tolist()  # accel, rotation rate, velocity kept
    with pytest.raises(ValueError, match='18 values'):
        can_bus_from_pose(np.zeros(5), _pose(yaw))


def test_lidar2img_of_a_scaled_image():
    from ptqat.datasets.transforms import lidar2img_matrix
    K = np.array([[1000.0, 0, 800], [0, 1000.0, 450], [0, 0, 1]])
    l2c = np.eye(4)
    l2c[:3, 3] = [0.5, -0.2, 1.0]
    pt = np.array([2.0, -1.0, 10.0, 1.0])
    for s in (1.0, 0.5):
        p = lidar2img_matrix(K, l2c, s) @ pt
        cam = l2c @ pt
        u = (K[0, 0] * cam[0] / cam[2] + K[0, 2]) * s
        v = (K[1, 1] * cam[1] / cam[2] + K[1, 2]) * s
        assert p[0] / p[2] == pytest.approx(u) and p[1] / p[2] == pytest.approx(v)


def test_queue_indices_draw():
    import random

    from ptqat.datasets.bevformer_nuscenes import BEVFormerNuScenesDataset
    ds = BEVFormerNuScenesDataset.__new__(BEVFormerNuScenesDataset)
    ds.queue_length = 4
    random.seed(0)
    for idx in (0, 2, 10):
        for _ in range(20):
            q = ds.queue_indices(idx)
            assert len(q) == 4 and q[-1] == idx
            hist = q[:-1]
            assert hist == sorted(hist) and all(max(0, idx - 4) <= i < max(idx, 1) for i in hist)


def test_dataset_scene_order_and_queue(synthetic_root):
    """The real dataset on the fixture set: scene order, CAN bus, a training queue."""
    from mmengine.registry import init_default_scope

    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import DATASETS
    init_default_scope('mmdet3d')
    root = synthetic_root[0].rstrip('/') + '/'
    cams = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
            'CAM_BACK_RIGHT']
    meta_keys = ('sample_idx', 'lidar2img', 'img_shape', 'pad_shape', 'can_bus',
                 'scene_token', 'frame_idx')
    ds = DATASETS.build(dict(
        type='BEVFormerNuScenesDataset', data_root=root, ann_file='nuscenes_infos_train.pkl',
        metainfo=dict(version='v1.0-mini'), modality=dict(use_lidar=False, use_camera=True),
        data_prefix={c: f'samples/{c}' for c in cams}, queue_length=3, test_mode=False,
        pipeline=[dict(type='LoadBEVFormerImages', scale=0.1, size_divisor=32),
                  dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
                  dict(type='Pack3DDetInputs', keys=['img', 'gt_bboxes_3d', 'gt_labels_3d'],
                       meta_keys=meta_keys)], filter_empty_gt=False))
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    keys = [(i['scene_token'], i['frame_idx']) for i in infos]
    scenes = list(dict.fromkeys(k[0] for k in keys))
    assert keys == sorted(keys, key=lambda k: (scenes.index(k[0]), k[1]))
    assert all(len(i['can_bus']) == 18 and 0 <= i['can_bus'][-1] < 360 for i in infos)
    out = ds[len(ds) - 1]
    img = out['inputs']['img']
    assert img.shape[:3] == (3, 6, 3) and img.shape[3] % 32 == 0 and img.shape[4] % 32 == 0
    meta = out['data_samples'].metainfo
    assert len(meta['queue_metas']) == 2
    assert meta['lidar2img'].shape == (6, 4, 4)
    assert meta['pad_shape'][0] == tuple(img.shape[3:])
