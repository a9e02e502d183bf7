"""nuScenes info files for the BEV models: mmdet3d's own converter plus the fields it lacks.

Step 1 runs mmdet3d 1.4's ``create_nuscenes_infos`` and ``update_nuscenes_infos`` (shipped in
the mmdet3d wheel under ``mmdet3d/.mim/tools``; not rewritten here). Step 2 adds, per sample,
what BEVDet/BEVDepth4D, BEVFormer and SparseBEV need and mmdet3d 1.x does not store:

==================  ===========================================================================
``scene_token``     scene of the sample; ``scene_name``, ``location`` (``log.location``)
``prev``/``next``   sample tokens of the neighbouring key frames ('' at the scene ends)
``frame_idx``       index of the key frame in its scene (0-based)
``can_bus``         18 floats: pos(3), orientation(4), accel(3), rotation_rate(3), vel(3), 0, 0
                    from ``can_bus/<scene>_pose.json`` (last message not after the sample);
                    zeros where the expansion is missing (as BEVFormer's converter does)
``occ_path``        ``gts/<scene>/<sample token>`` (relative to the data root) when present
``images[cam]``     adds ``ego2global`` (4×4, at the camera's timestamp) and ``lidar2img``
                    (4×4 = cam2img · lidar2cam)
``cam_sweeps``      {cam: [sweep, ...]} newest first, walking the camera's ``prev`` chain;
                    each sweep: ``img_path`` (relative to the data root), ``timestamp`` (s),
                    ``ego2global``, ``cam2ego``, ``cam2img``, ``sample_data_token``,
                    ``is_key_frame``
==================  ===========================================================================

Works on real nuScenes as well as on the synthetic set: only the devkit tables are read.
"""
from __future__ import annotations

import bisect
import importlib.util
import json
import logging
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ('v1.0-trainval', 'v1.0-test', 'v1.0-mini')
REQUIRED_TABLES = ('category', 'attribute', 'visibility', 'instance', 'sensor',
                   'calibrated_sensor', 'ego_pose', 'log', 'scene', 'sample', 'sample_data',
                   'sample_annotation', 'map')
CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
           'CAM_BACK_RIGHT')


def check_data_root(root: str, version: str) -> None:
    """Raise a clear error unless ``root`` holds the nuScenes tables of ``version``."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f'unknown nuScenes version {version!r}; allowed: {SUPPORTED_VERSIONS}')
    if not osp.isdir(root):
        raise FileNotFoundError(f'nuScenes data root {root!r} does not exist')
    table_dir = osp.join(root, version)
    missing = [t for t in REQUIRED_TABLES if not osp.isfile(osp.join(table_dir, f'{t}.json'))]
    if missing:
        present = sorted(d for d in os.listdir(root) if d.startswith('v1.0'))
        raise FileNotFoundError(
            f'{table_dir!r} lacks the nuScenes tables {missing} (a data root holds '
            f'<root>/<version>/*.json; versions found under {root!r}: {present or "none"})')


def load_nuscenes(root: str, version: str):
    """``nuscenes.NuScenes(version, root)``; a table it cannot read is named in a ValueError.

    The devkit's own errors (a ``JSONDecodeError`` position, a ``KeyError``) do not say which
    of the 13 files is broken; on failure each table is read again to find it.
    """
    from nuscenes import NuScenes
    try:
        return NuScenes(version=version, dataroot=root, verbose=False)
    except Exception as exc:  # noqa: BLE001  (re-raised unchanged unless a table is found bad)
        bad = _bad_table(osp.join(root, version))
        if bad is None:
            raise
        raise ValueError(f'{bad[0]!r} is not a readable nuScenes table: {bad[1]} '
                         f'(nuscenes-devkit: {type(exc).__name__}: {exc})') from exc


def _bad_table(table_dir: str) -> Optional[Tuple[str, str]]:
    """(path, what is wrong) of the first table in ``table_dir`` that is not a JSON list of
    records with a ``token``, or None."""
    for t in REQUIRED_TABLES:
        path = osp.join(table_dir, f'{t}.json')
        try:
            with open(path) as f:
                rows = json.load(f)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return path, f'{type(exc).__name__}: {exc}'
        if not isinstance(rows, list):
            return path, f'holds a {type(rows).__name__}, not a list of records'
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict) or 'token' not in r), None)
        if bad is not None:
            return path, f'record {bad} is not a dict with a token: {str(rows[bad])[:80]}'
    return None


def check_sensor_files(nusc, root: str, max_report: int = 5) -> None:
    """Raise ``FileNotFoundError`` naming missing key-frame camera/lidar files, if any."""
    missing = []
    for sd in nusc.sample_data:
        if sd['is_key_frame'] and sd['sensor_modality'] in ('camera', 'lidar'):
            if not osp.isfile(osp.join(root, sd['filename'])):
                missing.append(sd['filename'])
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} key-frame sensor files referenced by sample_data are missing under '
            f'{root!r}, e.g. {missing[:max_report]}')


def load_mmdet3d_tool(name: str):
    """Import ``mmdet3d/.mim/tools/dataset_converters/<name>.py`` from the installed mmdet3d."""
    import mmdet3d
    path = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', 'dataset_converters', f'{name}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'mmdet3d converter {path!r} not found; is mmdet3d 1.x installed '
                                'from its wheel (which ships .mim/tools)?')
    spec = importlib.util.spec_from_file_location(f'_mmdet3d_tools_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def _as_data_nuscenes(root: str):
    """Run inside a temp dir where ``./data/nuscenes`` is ``root`` (the v2 updater hard-codes it)."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(osp.join(tmp, 'data'))
        os.symlink(osp.abspath(root), osp.join(tmp, 'data', 'nuscenes'))
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(cwd)


def create_nuscenes_infos(root: str, version: str, out_dir: Optional[str] = None,
                          info_prefix: str = 'nuscenes', max_sweeps: int = 10,
                          max_cam_sweeps: int = 6) -> List[str]:
    """Write ``<out_dir>/<prefix>_infos_{train,val}.pkl`` (``_test`` for v1.0-test).

    Args:
        root: nuScenes data root.
        version: ``v1.0-trainval``, ``v1.0-test`` or ``v1.0-mini``.
        out_dir: where the final infos go (default ``root``).
        max_sweeps: lidar sweeps per sample (mmdet3d's converter).
        max_cam_sweeps: camera sweeps per camera and sample in ``cam_sweeps``.
    Returns:
        Paths of the written info files.
    """
    check_data_root(root, version)
    root = osp.abspath(root)
    out_dir = osp.abspath(out_dir or root)
    os.makedirs(out_dir, exist_ok=True)
    nusc = load_nuscenes(root, version)
    check_sensor_files(nusc, root)
    converter = load_mmdet3d_tool('nuscenes_converter')
    updater = load_mmdet3d_tool('update_infos_to_v2')
    with tempfile.TemporaryDirectory() as tmp:
        converter.create_nuscenes_infos(root, osp.join(tmp, info_prefix), version=version,
                                        max_sweeps=max_sweeps)
        splits = ['test'] if 'test' in version else ['train', 'val']
        paths = []
        for split in splits:
            v1 = osp.join(tmp, f'{info_prefix}_infos_{split}.pkl')
            with _as_data_nuscenes(root):
                updater.update_nuscenes_infos(pkl_path=v1, out_dir=out_dir)
            path = osp.join(out_dir, f'{info_prefix}_infos_{split}.pkl')
            add_bev_fields(path, nusc, max_cam_sweeps=max_cam_sweeps)
            paths.append(path)
    return paths


def add_bev_fields(info_path: str, nusc, max_cam_sweeps: int = 6) -> None:
    """Add the fields in this module's docstring to an mmdet3d v2 info file, in place."""
    import mmengine
    data = mmengine.load(info_path)
    can_bus = _CanBus(nusc.dataroot)
    for info in data['data_list']:
        _add_sample_fields(info, nusc, can_bus, max_cam_sweeps)
    data['metainfo']['info_version'] = data['metainfo'].get('info_version', '1.1') + '+ptqat'
    mmengine.dump(data, info_path)


def _pose_matrix(record: dict) -> np.ndarray:
    from pyquaternion import Quaternion
    m = np.eye(4)
    m[:3, :3] = Quaternion(record['rotation']).rotation_matrix
    m[:3, 3] = record['translation']
    return m


def _add_sample_fields(info: dict, nusc, can_bus: '_CanBus', max_cam_sweeps: int) -> None:
    sample = nusc.get('sample', info['token'])
    scene = nusc.get('scene', sample['scene_token'])
    log = nusc.get('log', scene['log_token'])
    info.update(scene_token=scene['token'], scene_name=scene['name'], location=log['location'],
                prev=sample['prev'], next=sample['next'],
                frame_idx=_frame_index(nusc, scene, sample['token']),
                can_bus=can_bus.vector(scene['name'], sample['timestamp']).tolist())
    occ = osp.join('gts', scene['name'], sample['token'])
    info['occ_path'] = occ if osp.isfile(osp.join(nusc.dataroot, occ, 'labels.npz')) else None
    info['cam_sweeps'] = {}
    for cam, img in info['images'].items():
        sd = nusc.get('sample_data', img['sample_data_token'])
        img['ego2global'] = _pose_matrix(nusc.get('ego_pose', sd['ego_pose_token'])).tolist()
        cam2img = np.eye(4)
        cam2img[:3, :3] = np.asarray(img['cam2img'])
        img['lidar2img'] = (cam2img @ np.asarray(img['lidar2cam'])).tolist()
        info['cam_sweeps'][cam] = _camera_sweeps(nusc, sd, max_cam_sweeps)


def _frame_index(nusc, scene: dict, token: str) -> int:
    cache = nusc.__dict__.setdefault('_ptqat_frame_idx', {})
    if scene['token'] not in cache:
        t, order = scene['first_sample_token'], []
        while t:
            order.append(t)
            t = nusc.get('sample', t)['next']
        cache[scene['token']] = {s: i for i, s in enumerate(order)}
    return cache[scene['token']][token]


def _camera_sweeps(nusc, key_sd: dict, max_sweeps: int) -> List[dict]:
    sweeps, sd = [], key_sd
    while sd['prev'] and len(sweeps) < max_sweeps:
        sd = nusc.get('sample_data', sd['prev'])
        calib = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
        sweeps.append(dict(
            img_path=sd['filename'], timestamp=sd['timestamp'] / 1e6,
            ego2global=_pose_matrix(nusc.get('ego_pose', sd['ego_pose_token'])).tolist(),
            cam2ego=_pose_matrix(calib).tolist(), cam2img=calib['camera_intrinsic'],
            sample_data_token=sd['token'], is_key_frame=sd['is_key_frame']))
    return sweeps


class _CanBus:
    """BEVFormer's 18-value CAN-bus vector from ``can_bus/<scene>_pose.json``."""

    def __init__(self, root: str):
        self.dir = osp.join(root, 'can_bus')
        self.cache: Dict[str, Optional[tuple]] = {}

    def vector(self, scene_name: str, timestamp_us: int) -> np.ndarray:
        if scene_name not in self.cache:
            self.cache[scene_name] = self._load(scene_name)
        msgs = self.cache[scene_name]
        out = np.zeros(18)
        if msgs is None:
            return out
        times, rows = msgs
        i = bisect.bisect_right(times, timestamp_us) - 1
        if i < 0:
            return out
        m = rows[i]
        out[:16] = list(m['pos']) + list(m['orientation']) + list(m['accel']) + \
            list(m['rotation_rate']) + list(m['vel'])
        return out

    def _load(self, scene_name: str):
        path = osp.join(self.dir, f'{scene_name}_pose.json')
        if not osp.isfile(path):
            logger.warning('no CAN bus pose for %s (%s): can_bus left at zeros', scene_name, path)
            return None
        try:
            with open(path) as f:
                msgs = sorted(json.load(f), key=lambda m: m['utime'])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f'{path!r} is not a readable CAN-bus pose file (a JSON list of '
                             f'messages with utime): {type(exc).__name__}: {exc}') from exc
        return [m['utime'] for m in msgs], msgs
