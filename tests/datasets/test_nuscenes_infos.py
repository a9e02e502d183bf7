"""Info files: mmdet3d's converter output plus the BEV fields, with consistent poses."""
import os
import os.path as osp
import re
import shutil

import mmengine
import numpy as np
import pytest
from PIL import Image
from tool_loader import load_tool

from ptqat.datasets.nuscenes_infos import check_data_root, create_nuscenes_infos
from ptqat.datasets.synthetic.constants import OBJECT_CLASSES


@pytest.fixture(scope='module')
def val_infos(synthetic_root):
    return mmengine.load(osp.join(synthetic_root[0], 'nuscenes_infos_val.pkl'))


def test_fields_present(synthetic_root, val_infos):
    assert val_infos['metainfo']['version'] == 'v1.0-mini'
    infos = val_infos['data_list']
    assert len(infos) == 3
    for i, info in enumerate(infos):
        for key in ('scene_token', 'scene_name', 'location', 'prev', 'next', 'frame_idx',
                    'can_bus', 'occ_path', 'cam_sweeps', 'images', 'lidar_points', 'instances',
                    'ego2global'):
            assert key in info, key
        # mmdet3d's converter drops the empty lidar_sweeps list of a scene's first frame
        assert ('lidar_sweeps' in info) == (i > 0)
        assert info['frame_idx'] == i
        assert (info['prev'] == '') == (i == 0) and (info['next'] == '') == (i == 2)
        assert len(info['can_bus']) == 18 and np.allclose(info['can_bus'][:2],
                                                          np.asarray(info['ego2global'])[:2, 3], atol=0.5)
        assert osp.isfile(osp.join(synthetic_root[0], info['occ_path'], 'labels.npz'))
        assert len(info['images']) == 6
        for cam, img in info['images'].items():
            assert np.asarray(img['lidar2img']).shape == (4, 4)
            assert np.asarray(img['ego2global']).shape == (4, 4)
            sweeps = info['cam_sweeps'][cam]
            assert len(sweeps) == (0 if i == 0 else min(6, 2 * i))
            times = [img['timestamp']] + [s['timestamp'] for s in sweeps]
            assert times == sorted(times, reverse=True)
            for s in sweeps:
                assert osp.isfile(osp.join(synthetic_root[0], s['img_path']))
    assert infos[1]['prev'] == infos[0]['token']


def _class_color_distance(rgb, color):
    """Distance of a pixel to the nearest shade the renderer can give a box of ``color``."""
    base = np.asarray(color, float)
    variants = [base, 0.6 * base + 0.4 * 255, 0.55 * base]
    shades = np.linspace(0.4, 1.0, 25)
    return min(np.linalg.norm(rgb - v * s) for v in variants for s in shades)


def _covers(corners_proj, corners_uv, u, v, width):
    """Whether a box (projected corners (8, 3) and pixels (8, 2)) may cover pixel (u, v).

    A box with corners behind the camera covers from its visible corners out to the image
    edge on its side.
    """
    front = corners_proj[:, 2] > 0
    if not front.any():
        return False
    us, vs = corners_uv[front, 0], corners_uv[front, 1]
    lo, hi = us.min(), us.max()
    if not front.all():
        lo, hi = (-np.inf, hi) if us.mean() < width / 2 else (lo, np.inf)
        return lo <= u <= hi
    return lo <= u <= hi and vs.min() <= v <= vs.max()


def _projection_hits(root, infos, corrupt=None):
    """Count objects whose projected centre pixel shows the object's colour in CAM_FRONT.

    Objects whose centre projects inside a nearer object's projected box are skipped
    (occluded), and so are objects that moved more than 15 cm in the 12 ms between the lidar
    and CAM_FRONT timestamps.
    """
    from mmdet3d.structures import LiDARInstance3DBoxes
    labels = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle', 'motorcycle',
              'pedestrian', 'traffic_cone', 'barrier')  # mmdet3d 1.x order of bbox_label_3d
    hits = total = 0
    for info in infos:
        img = info['images']['CAM_FRONT']
        pix = np.asarray(Image.open(osp.join(root, 'samples', 'CAM_FRONT', img['img_path'])), float)
        lidar2img = np.asarray(img['lidar2img'])
        if corrupt is not None:
            lidar2img = lidar2img @ corrupt
        boxes = LiDARInstance3DBoxes(np.asarray([i['bbox_3d'] for i in info['instances']]),
                                     origin=(0.5, 0.5, 0.5))  # v2 infos: z is the gravity centre
        pts = np.concatenate([boxes.gravity_center.numpy()[:, None], boxes.corners.numpy()], 1)
        proj = np.concatenate([pts, np.ones(pts.shape[:2] + (1,))], -1) @ lidar2img.T
        depth = proj[:, 0, 2]
        uv = proj[..., :2] / np.clip(proj[..., 2:3], 1e-3, None)
        for k, inst in enumerate(info['instances']):
            if inst['bbox_label_3d'] < 0 or np.linalg.norm(inst['velocity']) * 0.012 > 0.15:
                continue
            u, v = uv[k, 0]
            if not (1.0 < depth[k] < 40 and 5 <= u < pix.shape[1] - 5 and 5 <= v < pix.shape[0] - 5):
                continue
            if any(_covers(proj[j, 1:], uv[j, 1:], u, v, pix.shape[1])
                   for j in range(len(depth)) if j != k and depth[j] < depth[k]):
                continue
            total += 1
            rgb = pix[int(v) - 1:int(v) + 2, int(u) - 1:int(u) + 2].reshape(-1, 3).mean(0)
            color = OBJECT_CLASSES[labels[inst['bbox_label_3d']]].color
            hits += _class_color_distance(rgb, color) < 30
    return hits, total


def test_lidar2img_lands_where_the_renderer_drew(synthetic_root):
    root = synthetic_root[0]
    infos = mmengine.load(osp.join(root, 'nuscenes_infos_train.pkl'))['data_list']
    infos += mmengine.load(osp.join(root, 'nuscenes_infos_val.pkl'))['data_list']
    hits, total = _projection_hits(root, infos)
    assert total >= 5 and hits / total >= 0.8, (hits, total)
    # negative control: a lidar frame mistaken by the nuScenes -90° yaw misses the objects
    swap = np.array([[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    bad_hits, bad_total = _projection_hits(root, infos, corrupt=swap)
    assert bad_total == 0 or bad_hits / bad_total < 0.5, (bad_hits, bad_total)


def test_missing_tables_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"lacks the nuScenes tables \['category'"):
        check_data_root(str(tmp_path), 'v1.0-mini')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        check_data_root(str(tmp_path / 'nope'), 'v1.0-mini')


def test_unknown_version_error(synthetic_root):
    with pytest.raises(ValueError, match=r"unknown nuScenes version 'v1.0-maxi'; allowed"):
        create_nuscenes_infos(synthetic_root[0], 'v1.0-maxi')


def test_missing_image_error(synthetic_root, tmp_path):
    root = str(tmp_path / 'copy')
    src = synthetic_root[0]
    shutil.copytree(osp.join(src, 'v1.0-mini'), osp.join(root, 'v1.0-mini'))
    for d in ('samples', 'maps'):
        shutil.copytree(osp.join(src, d), osp.join(root, d))
    victim = sorted(os.listdir(osp.join(root, 'samples', 'CAM_BACK')))[0]
    os.remove(osp.join(root, 'samples', 'CAM_BACK', victim))
    with pytest.raises(FileNotFoundError, match='1 key-frame sensor files .*' + re.escape(victim)):
        create_nuscenes_infos(root, 'v1.0-mini')


@pytest.mark.parametrize('content, what', [
    ('{"token": ', 'JSONDecodeError'),          # cut short
    ('', 'JSONDecodeError'),                     # empty file
    ('{"a": 1}', 'holds a dict, not a list of records'),
    ('[{"name": "x"}]', 'record 0 is not a dict with a token'),
])
def test_corrupt_table_is_named(synthetic_root, tmp_path, content, what):
    """Issue 10 item 6: a table the devkit cannot read is named, with what is wrong."""
    root = str(tmp_path / 'copy')
    shutil.copytree(osp.join(synthetic_root[0], 'v1.0-mini'), osp.join(root, 'v1.0-mini'))
    bad = osp.join(root, 'v1.0-mini', 'instance.json')
    with open(bad, 'w') as f:
        f.write(content)
    with pytest.raises(ValueError, match=rf"'{re.escape(bad)}' is not a readable nuScenes table: .*{what}"):
        create_nuscenes_infos(root, 'v1.0-mini')
    with pytest.raises(SystemExit, match=rf"create_data: '{re.escape(bad)}' is not a readable"):
        load_tool('create_data').main(['nuscenes', '--root-path', root, '--version', 'v1.0-mini'])
