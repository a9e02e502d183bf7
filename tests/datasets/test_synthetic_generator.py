"""The synthetic nuScenes generator: the real devkit loads and checks what it writes."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import points_in_box
from nuscenes.utils.splits import create_splits_scenes

from ptqat.datasets.synthetic import SyntheticNuScenesConfig, generate_synthetic_nuscenes
from ptqat.datasets.synthetic.constants import DETECTION_CLASSES, attribute_for

TABLES = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor',
          'ego_pose', 'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map')


def test_all_tables_and_devkit_load(synthetic_root, nusc):
    root, summary = synthetic_root
    for t in TABLES:
        assert osp.isfile(osp.join(root, 'v1.0-mini', f'{t}.json')), t
    assert len(nusc.scene) == 3 and len(nusc.sample) == 9
    assert summary['samples'] == 9
    for s in nusc.sample:
        assert set(s['data']) == {'LIDAR_TOP', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT',
                                  'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT'}
    for sd in nusc.sample_data:
        assert osp.isfile(osp.join(root, sd['filename'])), sd['filename']
    # key frames and sweeps, chained per sensor in time order
    sweeps = [sd for sd in nusc.sample_data if not sd['is_key_frame']]
    assert {sd['channel'] for sd in sweeps} >= {'LIDAR_TOP', 'CAM_FRONT'}
    for sd in nusc.sample_data:
        if sd['next']:
            nxt = nusc.get('sample_data', sd['next'])
            assert nxt['timestamp'] > sd['timestamp'] and nxt['channel'] == sd['channel']


def test_scene_names_follow_real_splits(nusc):
    splits = create_splits_scenes()
    names = sorted(s['name'] for s in nusc.scene)
    assert set(names) <= set(splits['mini_train']) | set(splits['mini_val'])
    assert sum(n in splits['mini_val'] for n in names) == 1


def _detection_classes(nusc, split_names):
    """Detection classes with annotations the devkit's evaluation keeps (points, range)."""
    from nuscenes.eval.common.config import config_factory
    class_range = config_factory('detection_cvpr_2019').class_range
    found = set()
    for ann in nusc.sample_annotation:
        sample = nusc.get('sample', ann['sample_token'])
        scene = nusc.get('scene', sample['scene_token'])
        name = category_to_detection_name(ann['category_name'])
        if scene['name'] not in split_names or ann['num_lidar_pts'] == 0 or name is None:
            continue
        ego = nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])
        if np.hypot(*(np.subtract(ann['translation'], ego['translation'])[:2])) < class_range[name]:
            found.add(name)
    return found


def test_all_detection_classes_in_both_splits(nusc):
    splits = create_splits_scenes()
    assert _detection_classes(nusc, splits['mini_train']) == set(DETECTION_CLASSES)
    assert _detection_classes(nusc, splits['mini_val']) == set(DETECTION_CLASSES)


def test_velocities_and_attributes(nusc):
    speeds = {}
    for inst in nusc.instance:
        assert inst['nbr_annotations'] >= 2
    for ann in nusc.sample_annotation:
        v = nusc.box_velocity(ann['token'])
        assert np.all(np.isfinite(v)), ann['token']
        speed = float(np.linalg.norm(v[:2]))
        name = category_to_detection_name(ann['category_name'])
        if name is None:
            continue
        speeds.setdefault(name, []).append(speed)
        attrs = [nusc.get('attribute', t)['name'] for t in ann['attribute_tokens']]
        expected = attribute_for(name, speed)
        assert attrs == ([expected] if expected else []), (name, speed, attrs)
    for moving in ('car', 'pedestrian', 'bicycle'):
        assert max(speeds[moving]) > 1.0, moving
    assert max(speeds['traffic_cone']) < 1e-6 and max(speeds['barrier']) < 1e-6


def test_num_lidar_pts_matches_point_cloud(synthetic_root, nusc):
    root, _ = synthetic_root
    checked = 0
    for sample in nusc.sample[::2]:
        sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
        pc = LidarPointCloud.from_file(osp.join(root, sd['filename']))
        # the devkit's own boxes in the sensor frame, and its own inside test
        _, boxes, _ = nusc.get_sample_data(sd['token'])
        for box in boxes:
            ann = nusc.get('sample_annotation', box.token)
            assert points_in_box(box, pc.points[:3]).sum() == ann['num_lidar_pts']
            checked += 1
    assert checked > 50
    assert sum(a['num_lidar_pts'] > 0 for a in nusc.sample_annotation) > 0.5 * len(nusc.sample_annotation)


def test_map_expansion_can_bus_and_occupancy(synthetic_root, nusc):
    from nuscenes.can_bus.can_bus_api import NuScenesCanBus
    from nuscenes.map_expansion.map_api import NuScenesMap
    root, _ = synthetic_root
    scene = nusc.scene[0]
    log = nusc.get('log', scene['log_token'])
    nmap = NuScenesMap(dataroot=root, map_name=log['location'])
    pose = nusc.get('ego_pose', nusc.get('sample_data', nusc.get(
        'sample', scene['first_sample_token'])['data']['LIDAR_TOP'])['ego_pose_token'])
    x, y = pose['translation'][:2]
    masks = nmap.get_map_mask((x, y, 100, 100), 0.0, ['drivable_area', 'walkway', 'lane_divider'],
                              canvas_size=(200, 200))
    assert masks.shape == (3, 200, 200)
    assert 0.05 < masks[0].mean() < 0.8 and masks[1].mean() > 0.01 and masks[2].sum() > 0
    # the ego drives on the drivable area
    assert masks[0][100, 100] == 1
    msgs = NuScenesCanBus(dataroot=root).get_messages(scene['name'], 'pose')
    assert len(msgs) > 10 and set(msgs[0]) >= {'utime', 'pos', 'orientation', 'vel'}
    occ = np.load(osp.join(root, 'gts', scene['name'], scene['first_sample_token'], 'labels.npz'))
    assert set(occ.files) == {'semantics', 'mask_lidar', 'mask_camera'}
    for k in occ.files:
        assert occ[k].shape == (200, 200, 16) and occ[k].dtype == np.uint8
    labels = set(np.unique(occ['semantics']).tolist())
    assert {4, 11, 13, 14, 15, 17} <= labels  # car, road, sidewalk, terrain, manmade, free
    assert occ['semantics'][100, 100, 2] == 11  # under the ego: driveable surface
    assert 0.05 < occ['mask_camera'].mean() < 0.9 and 0.01 < occ['mask_lidar'].mean() < 0.9


def test_deterministic_by_seed(tmp_path):
    cfg = dict(train_scenes=1, val_scenes=1, samples_per_scene=2, cam_sweeps=0, lidar_sweeps=0,
               image_size=(160, 90), lidar_azimuths=64, occupancy=False)
    outs = []
    for i, seed in enumerate((5, 5, 6)):
        root = str(tmp_path / f'r{i}')
        generate_synthetic_nuscenes(root, SyntheticNuScenesConfig(seed=seed, **cfg), progress=False)
        with open(osp.join(root, 'v1.0-mini', 'sample_annotation.json')) as f:
            anns = json.load(f)
        img = sorted(os.listdir(osp.join(root, 'samples', 'CAM_FRONT')))[0]
        with open(osp.join(root, 'samples', 'CAM_FRONT', img), 'rb') as f:
            outs.append((anns, f.read()))
    assert outs[0] == outs[1]
    assert outs[0][0] != outs[2][0]


def _tree(root: str) -> dict:
    """Relative path -> bytes of every file under ``root``."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            with open(osp.join(d, f), 'rb') as fh:
                out[osp.relpath(osp.join(d, f), root)] = fh.read()
    return out


def test_workers_write_the_same_set_file_for_file(tmp_path):
    cfg = SyntheticNuScenesConfig(train_scenes=3, val_scenes=1, samples_per_scene=2, cam_sweeps=1,
                                  lidar_sweeps=0, image_size=(160, 90), lidar_azimuths=64,
                                  occupancy=True)
    one, three = str(tmp_path / 'one'), str(tmp_path / 'three')
    s1 = generate_synthetic_nuscenes(one, cfg, progress=False, workers=1)
    s3 = generate_synthetic_nuscenes(three, cfg, progress=False, workers=3)
    a, b = _tree(one), _tree(three)
    assert s1 == s3 and sorted(a) == sorted(b)
    assert len(a) > 40  # tables, maps, images, point clouds and occupancy labels
    assert [k for k in a if a[k] != b[k]] == []


@pytest.mark.parametrize('workers', [0, -2, 1.5, True])
def test_bad_workers_is_refused(tmp_path, workers):
    with pytest.raises(ValueError, match=f'workers={workers!r}: need an integer >= 1'):
        generate_synthetic_nuscenes(str(tmp_path), SyntheticNuScenesConfig(), progress=False,
                                    workers=workers)


@pytest.mark.parametrize('kwargs, match', [
    (dict(version='v2.0-mini'), "unknown version 'v2.0-mini'"),
    (dict(train_scenes=9), 'v1.0-mini has 8 train and 2 val scenes'),
    (dict(val_scenes=0), 'val_scenes=0'),
    (dict(samples_per_scene=1), 'samples_per_scene=1'),
    (dict(image_size=(10, 10)), r'image_size=\(10, 10\)'),
    (dict(object_counts=dict(unicorn=1)), "unknown object classes \\['unicorn'\\]"),
])
def test_bad_config_is_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_synthetic_nuscenes(str(tmp_path), SyntheticNuScenesConfig(**kwargs), progress=False)


def test_trainval_names(tmp_path):
    from ptqat.datasets.synthetic import scene_names
    train, val = scene_names('v1.0-trainval', 12, 3)
    splits = create_splits_scenes()
    assert set(train) <= set(splits['train']) and set(val) <= set(splits['val'])
    assert all(int(n[-4:]) not in range(161, 177) for n in train + val)
    assert math.isclose(len(train), 12)


def _scenes(root: str, version: str = 'v1.0-trainval') -> dict:
    """Per scene name: (ego translations, boxes as (translation, size, rotation), lidar bytes).

    Ego and boxes are in the global frame, key frames in time order.
    """
    def load(table):
        with open(osp.join(root, version, f'{table}.json')) as f:
            return json.load(f)
    samples, sds, poses = load('sample'), load('sample_data'), load('ego_pose')
    pose = {p['token']: p for p in poses}
    anns_by_sample = {}
    for a in load('sample_annotation'):
        anns_by_sample.setdefault(a['sample_token'], []).append(
            (a['translation'], a['size'], a['rotation']))
    lidar = {sd['sample_token']: sd for sd in sds if sd['is_key_frame'] and 'LIDAR_TOP' in sd['filename']}
    out = {}
    for scene in load('scene'):
        mine = sorted((s for s in samples if s['scene_token'] == scene['token']), key=lambda s: s['timestamp'])
        ego = [pose[lidar[s['token']]['ego_pose_token']]['translation'] for s in mine]
        boxes = [sorted(anns_by_sample.get(s['token'], [])) for s in mine]
        with open(osp.join(root, lidar[mine[0]['token']]['filename']), 'rb') as f:
            points = f.read()
        out[scene['name']] = dict(ego=ego, boxes=boxes, lidar=points,
                                  sizes=sorted(tuple(b[1]) for frame in boxes for b in frame))
    return out


def test_scenes_seeded_by_name_no_val_scene_in_another_sets_train(tmp_path):
    """Issue 10 item 5: sets of different sizes share no content between one's val and the
    other's train scenes, and a scene of the same name is the same in both (ego path, boxes,
    lidar bytes), although its position in the list differs."""
    small = dict(version='v1.0-trainval', samples_per_scene=2, cam_sweeps=0, lidar_sweeps=0,
                 image_size=(160, 90), lidar_azimuths=64, occupancy=False)
    sets = {}
    for key, (n_train, n_val) in dict(a=(2, 1), b=(3, 2)).items():
        root = str(tmp_path / key)
        summary = generate_synthetic_nuscenes(
            root, SyntheticNuScenesConfig(train_scenes=n_train, val_scenes=n_val, **small), progress=False)
        sets[key] = (summary, _scenes(root))
    (sum_a, a), (sum_b, b) = sets['a'], sets['b']
    for val_set, train_set, val_sum, train_sum in ((a, b, sum_a, sum_b), (b, a, sum_b, sum_a)):
        for v in val_sum['val_scenes']:
            for t in train_sum['train_scenes']:
                assert val_set[v]['sizes'] != train_set[t]['sizes'], (v, t)
                assert not set(map(tuple, val_set[v]['ego'])) & set(map(tuple, train_set[t]['ego'])), (v, t)
                assert val_set[v]['lidar'] != train_set[t]['lidar'], (v, t)
    shared = set(a) & set(b)
    # the first val scene is 3rd in set a and 4th in set b
    assert shared == set(sum_a['train_scenes']) | set(sum_a['val_scenes'])
    for name in shared:
        assert a[name] == b[name], name


SCENE_0001_HASH = 7734456190855178757


def test_scene_seed_is_stable_and_name_dependent():
    from ptqat.datasets.synthetic import scene_seed
    # sha256('scene-0001')[:8] little-endian: the same in every process, unlike Python's salted hash()
    assert scene_seed(0, 'scene-0001', 'train') == [0, SCENE_0001_HASH]
    assert scene_seed(0, 'scene-0001', 'train') != scene_seed(0, 'scene-0002', 'train')
    assert scene_seed(0, 'scene-0001', 'train') != scene_seed(1, 'scene-0001', 'train')
    with pytest.raises(ValueError, match="split must be train or val, got 'test'"):
        scene_seed(0, 'scene-0001', 'test')


def test_too_many_scenes_names_both_counts():
    from ptqat.datasets.synthetic import scene_names
    splits = create_splits_scenes()
    from ptqat.datasets.synthetic.generator import _CAN_BLACKLIST
    n_val = len([n for n in splits['val'] if int(n[-4:]) not in _CAN_BLACKLIST])
    with pytest.raises(ValueError, match=rf'only \d+ train / {n_val} val scene names, asked for 10000 / 3'):
        scene_names('v1.0-trainval', 10000, 3)


def test_val_scene_never_a_train_scene_across_versions(tmp_path, monkeypatch):
    """nuScenes' mini_train lists two val scenes (scene-0553, scene-0796): generated as a val
    scene (v1.0-trainval) such a name must not reproduce the train scene (v1.0-mini)."""
    from ptqat.datasets.synthetic import generator, scene_seed
    splits = create_splits_scenes()
    assert set(splits['mini_train']) & set(splits['val']) == {'scene-0553', 'scene-0796'}
    assert scene_seed(0, 'scene-0553', 'val') != scene_seed(0, 'scene-0553', 'train')
    assert scene_seed(0, 'scene-0003', 'val') == [0, int.from_bytes(
        __import__('hashlib').sha256(b'scene-0003').digest()[:8], 'little')]  # other val names: by name
    small = dict(samples_per_scene=2, cam_sweeps=0, lidar_sweeps=0, image_size=(160, 90),
                 lidar_azimuths=64, occupancy=False)
    sets = {}
    for version, names in (('v1.0-mini', (['scene-0553'], ['scene-0103'])),
                           ('v1.0-trainval', (['scene-0001'], ['scene-0553']))):
        # the first names of these splits are others; choose the overlapping one directly
        monkeypatch.setattr(generator, 'scene_names', lambda *a, names=names: names)
        root = str(tmp_path / version)
        generate_synthetic_nuscenes(root, SyntheticNuScenesConfig(version=version, **small), progress=False)
        sets[version] = _scenes(root, version)
    mini, trainval = sets['v1.0-mini']['scene-0553'], sets['v1.0-trainval']['scene-0553']
    assert mini['sizes'] != trainval['sizes'] and mini['lidar'] != trainval['lidar']
