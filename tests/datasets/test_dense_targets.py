"""LoadOccGTFromFile and LoadBEVSegmentation: orientation on an asymmetric map with the real
NuScenesMap, BEV flips, occupancy labels that follow the flipped boxes, clear errors."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch

from ptqat.datasets.transforms import (BEVAug, LoadBEVSegmentation, LoadOccGTFromFile,
                                       PackBEVDetInputs, bda_matrix)

LOC = 'boston-seaport'
# walkway in the ego frame: x (forward) 5..15 m, y (left) 10..20 m
WALK_X, WALK_Y = (5.0, 15.0), (10.0, 20.0)


def _ego2global(x, y, yaw_deg):
    a = math.radians(yaw_deg)
    m = np.eye(4)
    m[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    m[:2, 3] = (x, y)
    return m


def _write_map(root, ego2global):
    """A map expansion with one walkway on the ego's left (global coordinates)."""
    ring = [(WALK_X[0], WALK_Y[0]), (WALK_X[1], WALK_Y[0]), (WALK_X[1], WALK_Y[1]),
            (WALK_X[0], WALK_Y[1])]
    glob = [tuple((ego2global @ np.array([x, y, 0, 1]))[:2]) for x, y in ring]
    m = {k: [] for k in ('drivable_area', 'road_segment', 'road_block', 'lane', 'ped_crossing',
                         'stop_line', 'carpark_area', 'road_divider', 'lane_divider',
                         'traffic_light', 'lane_connector')}
    m['node'] = [dict(token=f'n{i}', x=float(x), y=float(y)) for i, (x, y) in enumerate(glob)]
    m['line'] = []
    m['polygon'] = [dict(token='p0', exterior_node_tokens=[f'n{i}' for i in range(4)], holes=[])]
    m['walkway'] = [dict(token='w0', polygon_token='p0')]
    m.update(version='1.3', arcline_path_3={}, connectivity={}, canvas_edge=[3000.0, 3000.0])
    os.makedirs(osp.join(root, 'maps', 'expansion'))
    with open(osp.join(root, 'maps', 'expansion', f'{LOC}.json'), 'w') as f:
        json.dump(m, f)


def _map_results(e2g, bda=None):
    r = dict(token='tok', location=LOC, images={'CAM_FRONT_LEFT': dict(ego2global=e2g)},
             eval_ann_info={})
    if bda is not None:
        r['bda'] = bda
    return r


def _extent(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


@pytest.mark.parametrize('yaw', [0.0, 90.0, -150.0])
def test_map_mask_orientation_and_flips(tmp_path, yaw):
    e2g = _ego2global(310.0, 420.0, yaw)
    _write_map(str(tmp_path), e2g)
    t = LoadBEVSegmentation(str(tmp_path), classes=['walkway', 'drivable_area'])
    out = t(_map_results(e2g))
    walk = out['gt_masks_bev'][0]
    assert out['gt_masks_bev'].shape == (2, 200, 200) and out['gt_masks_bev'][1].sum() == 0
    # [y, x]: rows = y (left = larger y), cols = x; cell i spans -50 + 0.5 i .. +0.5
    r0, r1, c0, c1 = _extent(walk)
    assert (r0, r1) == pytest.approx((120, 139), abs=1) and (c0, c1) == pytest.approx((110, 129), abs=1)
    assert walk[:100].sum() == 0  # nothing on the ego's right
    assert walk.sum() == pytest.approx(400, rel=0.15)  # fillPoly includes the edge pixels
    np.testing.assert_array_equal(out['eval_ann_info']['gt_masks_bev'], out['gt_masks_bev'])
    # flip_dy mirrors y: the walkway moves to the right half, rows 60..79
    flipped = t(_map_results(e2g, bda_matrix(0, 1, False, True)))
    np.testing.assert_array_equal(flipped['gt_masks_bev'][0], walk[::-1])
    assert _extent(flipped['gt_masks_bev'][0])[:2] == pytest.approx((60, 79), abs=1)
    np.testing.assert_array_equal(flipped['eval_ann_info']['gt_masks_bev'][0], walk)  # un-augmented
    # flip_dx mirrors x: columns 70..89
    fdx = t(_map_results(e2g, bda_matrix(0, 1, True, False)))['gt_masks_bev'][0]
    np.testing.assert_array_equal(fdx, walk[:, ::-1])
    # a 90 deg BEV rotation (counter-clockwise): ego-left (+y) goes to BEV -x (behind)
    rot = t(_map_results(e2g, bda_matrix(90, 1, False, False)))['gt_masks_bev'][0]
    r0, r1, c0, c1 = _extent(rot)
    assert (c0, c1) == pytest.approx((60, 79), abs=1) and (r0, r1) == pytest.approx((110, 129), abs=1)


def test_map_cache_and_errors(tmp_path):
    e2g = _ego2global(310.0, 420.0, 30.0)
    _write_map(str(tmp_path), e2g)
    t = LoadBEVSegmentation(str(tmp_path), classes=['walkway'])
    first = t(_map_results(e2g))['gt_masks_bev']
    assert len(t._cache) == 1
    np.testing.assert_array_equal(t(_map_results(e2g))['gt_masks_bev'], first)
    other = _map_results(e2g)
    other['location'] = 'singapore-onenorth'
    with pytest.raises(FileNotFoundError, match='singapore-onenorth.json'):
        t(dict(other, token='tok2'))
    with pytest.raises(ValueError, match="unknown map location 'atlantis'"):
        t(dict(other, token='tok3', location='atlantis'))
    with pytest.raises(KeyError, match='has no location'):
        t(dict(token='tok4', images={}))
    with pytest.raises(ValueError, match='unknown map classes'):
        LoadBEVSegmentation(str(tmp_path), classes=['lava'])


def _val_info(root):
    from mmengine import load
    return load(osp.join(root, 'nuscenes_infos_val.pkl'))['data_list'][0]


def test_occupancy_follows_bev_flip(synthetic_root):
    root = synthetic_root[0]
    info = _val_info(root)
    load = LoadOccGTFromFile(data_root=root)
    plain = load(dict(occ_path=info['occ_path'], token=info['token'], eval_ann_info=None))
    sem = plain['voxel_semantics']
    assert sem.shape == (200, 200, 16) and sem.dtype == np.uint8
    assert plain['mask_camera'].dtype == bool and plain['mask_camera'].any()
    np.testing.assert_array_equal(plain['eval_ann_info']['voxel_semantics'], sem)
    for fdx, fdy in ((True, False), (False, True), (True, True)):
        out = load(dict(occ_path=info['occ_path'], bda=bda_matrix(0, 1, fdx, fdy)))
        ref = sem[::-1] if fdx else sem
        ref = ref[:, ::-1] if fdy else ref
        np.testing.assert_array_equal(out['voxel_semantics'], ref)
        assert not np.array_equal(out['voxel_semantics'], sem)  # the scene is not symmetric
        # the flipped labels agree with BEVAug's flipped boxes: car centres hold car voxels
        l2e = np.asarray(info['lidar_points']['lidar2ego'])
        checked = 0
        for inst in info['instances']:
            if inst['bbox_label_3d'] != 0:  # mmdet3d's class 0 = car; Occ3D car = 4
                continue
            x, y, z = inst['bbox_3d'][:3]  # the info's boxes are gravity-centred
            p = bda_matrix(0, 1, fdx, fdy) @ l2e @ np.array([x, y, z, 1.0])
            idx = np.floor((p[:3] - np.array([-40, -40, -1])) / 0.4).astype(int)
            if np.all(idx >= 0) and np.all(idx < (200, 200, 16)):
                assert out['voxel_semantics'][tuple(idx)] == 4, (inst, idx)
                checked += 1
        assert checked > 0


def test_occupancy_errors_name_the_problem(synthetic_root, tmp_path):
    root = synthetic_root[0]
    info = _val_info(root)
    with pytest.raises(KeyError, match='tok9 has no occ_path'):
        LoadOccGTFromFile(root)(dict(token='tok9', occ_path=None))
    with pytest.raises(FileNotFoundError, match=r'gts/nowhere/labels\.npz'):
        LoadOccGTFromFile(root)(dict(token='tok9', occ_path='gts/nowhere'))
    with pytest.raises(ValueError, match='follows BEV flips only'):
        LoadOccGTFromFile(root)(dict(occ_path=info['occ_path'], bda=bda_matrix(10, 1, False, False)))


def test_pack_keeps_dense_label_dtypes():
    results = dict(img=np.zeros((1, 3, 4, 4), np.uint8), voxel_semantics=np.ones((2, 2, 2), np.uint8),
                   mask_camera=np.ones((2, 2, 2), bool), gt_masks_bev=np.zeros((3, 4, 4), np.uint8))
    packed = PackBEVDetInputs(keys=['img', 'voxel_semantics', 'mask_camera', 'gt_masks_bev'])(results)
    assert packed['inputs']['voxel_semantics'].dtype == torch.uint8
    assert packed['inputs']['mask_camera'].dtype == torch.bool
    assert packed['inputs']['gt_masks_bev'].shape == (3, 4, 4)
