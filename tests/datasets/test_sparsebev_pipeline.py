"""SparseBEV data: key frame + camera sweeps with their lidar2img and timestamps, the
earliest-frame repetition, missing sweep files, and the image / BEV augmentations."""
import copy
import logging
import os.path as osp

import numpy as np
import pytest

from ptqat.datasets.transforms import (GlobalRotScaleTransImage,
                                       LoadMultiViewImageFromMultiSweeps, RandomTransformImage,
                                       choose_sweeps, sweep_lidar2img)
from ptqat.datasets.nuscenes_infos import CAMERAS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'sparsebev', 'sparsebev-tiny_synth.py')


def _dataset(root, test_mode=True, sweeps=3, interval=1):
    import ptqat.plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet3d.registry import DATASETS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(TINY)
    ds = copy.deepcopy(cfg.val_dataloader.dataset if test_mode else
                       cfg.train_dataloader.dataset)
    root = root.rstrip('/') + '/'
    ds.update(data_root=root, metainfo=dict(ds.metainfo, version='v1.0-mini'))
    ds.ann_file = 'nuscenes_infos_train.pkl'
    ds.pipeline = ds.pipeline[:1]
    ds.pipeline[0].update(data_root=root, sweeps_num=sweeps, test_interval=interval)
    return DATASETS.build(ds)


def _lidar2global(info):
    return np.asarray(info['ego2global']) @ np.asarray(info['lidar_points']['lidar2ego'])


def test_sweeps_loaded_with_ego_motion_compensated_lidar2img(synthetic_root):
    ds = _dataset(synthetic_root[0])
    # the last sample of the first scene has the previous key frame among its sweeps
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    i = max(range(len(ds)), key=lambda k: len(infos[k]['cam_sweeps']['CAM_FRONT']))
    res = ds.prepare_data(i)
    N, T = 6, 4
    assert len(res['img']) == T * N and res['lidar2img'].shape == (T * N, 4, 4)
    ts = res['img_timestamp'].reshape(T, N)
    assert (np.diff(ts.mean(1)) < 0).all()  # older frames, strictly (enough sweeps here)
    info, prev = infos[i], next(x for x in infos if x['token'] == infos[i]['prev'])
    # a sweep that is the previous key frame: current-LiDAR point -> its image must equal
    # the previous sample's own lidar2img on the same world point
    X = np.array([12.0, -3.0, 1.0, 1.0])  # world point, relative to the current ego
    X[:3] += _lidar2global(info)[:3, 3]
    p_cur = np.linalg.inv(_lidar2global(info)) @ X
    p_prev = np.linalg.inv(_lidar2global(prev)) @ X
    for c, cam in enumerate(CAMERAS):
        sweeps = info['cam_sweeps'][cam]
        k = next(j for j, s in enumerate(sweeps) if s['is_key_frame'])
        mat = sweep_lidar2img(info['lidar_points']['lidar2ego'], info['ego2global'], sweeps[k])
        np.testing.assert_allclose(mat @ p_cur, np.asarray(prev['images'][cam]['lidar2img'])
                                   @ p_prev, rtol=1e-4)  # float32 info matrices
        # and the loader put the key frame first with the info's matrix
        np.testing.assert_allclose(res['lidar2img'][c], info['images'][cam]['lidar2img'],
                                   rtol=1e-5, atol=1e-4)
        assert res['img_timestamp'][c] == info['images'][cam]['timestamp']


def test_fewer_sweeps_repeat_the_earliest_frame_and_log(synthetic_root):
    from mmengine.logging import MMLogger
    ds = _dataset(synthetic_root[0], sweeps=3, interval=1)
    first = next(i for i in range(len(ds))
                 if len(ds.get_data_info(i)['cam_sweeps']['CAM_FRONT']) == 0)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        res = ds.prepare_data(first)
    finally:
        logger.removeHandler(handler)
    assert any('repeating the earliest frame' in r.getMessage() for r in records)
    frames = np.asarray(res['img']).reshape(4, 6, *res['img'][0].shape)
    for t in range(1, 4):  # no sweep at a scene start: the key frame is repeated
        assert np.array_equal(frames[t], frames[0])
    assert np.allclose(res['img_timestamp'].reshape(4, 6), res['img_timestamp'][:6])


def test_some_sweeps_repeat_the_earliest_sweep_and_log(synthetic_root):
    """Fewer sweeps on disk than asked, but not none: the sweeps there are used in order and
    the earliest of them fills the rest (not the key frame), and it is logged."""
    from mmengine.logging import MMLogger
    ds = _dataset(synthetic_root[0], sweeps=3, interval=1)
    i = next(k for k in range(len(ds))
             if min(len(v) for v in ds.get_data_info(k)['cam_sweeps'].values()) == 2)
    info = ds.get_data_info(i)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        res = ds.prepare_data(i)
    finally:
        logger.removeHandler(handler)
    assert any('2 camera sweeps available for 3 previous frames: repeating the earliest'
               in r.getMessage() for r in records)
    frames = np.asarray(res['img']).reshape(4, 6, *res['img'][0].shape)
    stamps = res['img_timestamp'].reshape(4, 6)
    for c, cam in enumerate(CAMERAS):
        sw = info['cam_sweeps'][cam]
        assert [stamps[t, c] for t in (1, 2, 3)] == [sw[0]['timestamp'], sw[1]['timestamp'],
                                                      sw[1]['timestamp']]
        assert res['filename'][6 + c] == osp.join(synthetic_root[0].rstrip('/') + '/',
                                                  sw[0]['img_path'])
    assert np.array_equal(frames[3], frames[2]) and not np.array_equal(frames[2], frames[0])
    assert np.array_equal(res['lidar2img'][18:], res['lidar2img'][12:18])


def test_choose_sweeps_schedule():
    assert choose_sweeps(60, 7, True) == ([5, 11, 17, 23, 29, 35, 41], False)
    assert choose_sweeps(20, 7, True) == ([5, 11, 17, 19, 19, 19, 19], True)
    assert choose_sweeps(3, 7, False) == ([0, 1, 2, 2, 2, 2, 2], True)
    assert choose_sweeps(0, 7, False) == ([], True)
    assert choose_sweeps(0, 0, False) == ([], False)
    idx, rep = choose_sweeps(60, 7, False, rng=np.random.default_rng(0))
    step = idx[0] + 1
    assert 4 <= step <= 8 and idx == [(k + 1) * step - 1 for k in range(7)] and not rep


def test_missing_sweep_file_is_an_error_naming_it(synthetic_root):
    ds = _dataset(synthetic_root[0])
    i = next(k for k in range(len(ds))
             if len(ds.get_data_info(k)['cam_sweeps']['CAM_FRONT']) > 0)
    info = ds.get_data_info(i)
    info['cam_sweeps']['CAM_BACK'][0]['img_path'] = 'sweeps/CAM_BACK/missing.jpg'
    t = LoadMultiViewImageFromMultiSweeps(sweeps_num=1, data_root=synthetic_root[0],
                                          test_mode=True, test_interval=1)
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        t(info)


def test_augmentations_keep_images_and_boxes_consistent():
    """A box centre projects to the same (augmented) pixel before and after
    RandomTransformImage + GlobalRotScaleTransImage."""
    import torch
    from mmdet3d.structures import LiDARInstance3DBoxes
    np.random.seed(0)
    K = np.array([[800, 0, 800, 0], [0, 800, 450, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    l2c = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])
    l2i = K @ l2c
    img = np.zeros((900, 1600, 3), np.uint8)
    u, v = 900, 500
    img[v - 2:v + 3, u - 2:u + 3] = 255
    boxes = LiDARInstance3DBoxes(torch.tensor([[20.0, -1.0, -0.5, 4, 2, 1.5, 0.2, 0, 0]]),
                                 box_dim=9)
    c = boxes.gravity_center[0].numpy()
    conf = dict(resize_lim=(0.38, 0.55), final_dim=(256, 704), bot_pct_lim=(0.0, 0.0),
                rot_lim=(0.0, 0.0), H=900, W=1600, rand_flip=True)
    res = dict(img=[img], lidar2img=l2i[None].astype(np.float32), gt_bboxes_3d=boxes)
    before = l2i @ np.r_[c, 1]
    flips = set()
    for _ in range(6):
        r = RandomTransformImage(conf, training=True)(copy.deepcopy(res))
        r = GlobalRotScaleTransImage()(r)
        flips.add(r['ida_aug']['flip'])
        c2 = r['gt_bboxes_3d'].gravity_center[0].numpy()
        after = r['lidar2img'][0].astype(np.float64) @ np.r_[c2, 1]
        ida = r['ida_aug']
        x = before[0] / before[2] * ida['resize'] - ida['crop'][0]
        if ida['flip']:
            x = (ida['crop'][2] - ida['crop'][0]) - x
        y = before[1] / before[2] * ida['resize'] - ida['crop'][1]
        np.testing.assert_allclose(after[:2] / after[2], [x, y], rtol=1e-4, atol=1e-2)
        assert r['img'][0].shape == (256, 704, 3)
        # the marked pixel moved with the image
        m = np.argwhere(r['img'][0][..., 0] > 100).mean(0)
        px = (u * ida['resize'] - ida['crop'][0])
        if ida['flip']:
            px = ida['crop'][2] - ida['crop'][0] - px
        assert abs(m[1] - px) < 2.0 and abs(m[0] - (v * ida['resize'] - ida['crop'][1])) < 2.0
    assert flips == {True, False}
    with pytest.raises(ValueError, match='rot_lim'):
        RandomTransformImage(dict(conf, rot_lim=(-5.0, 5.0)))
