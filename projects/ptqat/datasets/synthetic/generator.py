"""Write a synthetic data set in the true nuScenes on-disk layout.

The result loads with ``nuscenes.NuScenes``, converts with mmdet3d's own converter and evaluates
with the real ``NuScenesMetric`` / ``DetectionEval``::

    <root>/<version>/*.json         the 13 tables
    <root>/samples/<channel>/...    key-frame JPEGs and LIDAR_TOP .pcd.bin
    <root>/sweeps/<channel>/...     camera and lidar sweeps
    <root>/maps/<token>.png         semantic-prior raster (placeholder, see ``_write_maps``)
    <root>/maps/expansion/*.json    map expansion (v1.3) for all four locations
    <root>/can_bus/<scene>_pose.json
    <root>/gts/<scene>/<sample token>/labels.npz   Occ3D labels

Everything is deterministic given the config (the seed included). Each scene is seeded by its
name, not its position, so a scene is the same in every set that holds it and a val scene of one
set is never a train scene of another (no evaluation leak between sets of different sizes).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .constants import (ATTRIBUTES, CAMERA_RIG, CAMERAS, CATEGORIES, LIDAR, LIDAR_TRANSLATION,
                        LIDAR_YAW_DEG, LOCATIONS, NUSCENES_IMAGE_SIZE)
from .geometry import (camera_rotation, make_transform, matrix_to_quaternion, quaternion_to_matrix,
                       yaw_quaternion)
from .layout import RoadLayout
from .lidar import cast, points_in_box
from .occupancy import occupancy_labels
from .render import render_camera, save_jpeg, scaled_intrinsic
from .world import ANNOTATION_RANGE, DEFAULT_OBJECT_COUNTS, Ego, SceneWorld, build_world

logger = logging.getLogger(__name__)

VERSIONS = ('v1.0-mini', 'v1.0-trainval')
KEYFRAME_INTERVAL_US = 500_000  # 2 Hz key frames
# Scenes the CAN-bus API refuses or warns about (nuscenes-devkit 1.2.0's blacklists).
_CAN_BLACKLIST = {161, 162, 163, 164, 165, 166, 167, 168, 170, 171, 172, 173, 174, 175, 176,
                  309, 310, 311, 312, 313, 314}


@dataclass
class SyntheticNuScenesConfig:
    """What to generate.

    Attributes:
        version: ``v1.0-mini`` (at most 8 train and 2 val scenes, named after the real
            ``mini_train``/``mini_val`` scenes) or ``v1.0-trainval`` (names from the real
            ``train``/``val`` lists).
        train_scenes, val_scenes: number of scenes per split (each >= 1).
        samples_per_scene: key frames per scene (>= 2, 0.5 s apart).
        cam_sweeps, lidar_sweeps: non-key frames between consecutive key frames per sensor.
        image_size: (width, height). nuScenes is 1600×900; mmdet3d's 2-D re-projection in
            ``update_infos_to_v2`` assumes that canvas, so smaller images only suit 3-D use.
        lidar_azimuths: rays per beam and revolution (32 beams).
        object_counts: objects per class and scene (``world.DEFAULT_OBJECT_COUNTS`` keys).
        occupancy: write Occ3D labels.
        seed: everything derives from it and each scene's name (see ``scene_seed``).
    """
    version: str = 'v1.0-mini'
    train_scenes: int = 8
    val_scenes: int = 2
    samples_per_scene: int = 6
    cam_sweeps: int = 1
    lidar_sweeps: int = 2
    image_size: Tuple[int, int] = NUSCENES_IMAGE_SIZE
    lidar_azimuths: int = 720
    object_counts: Dict[str, int] = field(default_factory=lambda: dict(DEFAULT_OBJECT_COUNTS))
    occupancy: bool = True
    seed: int = 0
    jpeg_quality: int = 90

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field and what is allowed."""
        if self.version not in VERSIONS:
            raise ValueError(f'unknown version {self.version!r}; allowed: {VERSIONS}')
        for name in ('train_scenes', 'val_scenes'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name}={getattr(self, name)}: need at least 1 (mmdet3d\'s '
                                 'converter writes an empty info file for an empty split)')
        if self.version == 'v1.0-mini' and (self.train_scenes > 8 or self.val_scenes > 2):
            raise ValueError(f'v1.0-mini has 8 train and 2 val scenes, asked for '
                             f'{self.train_scenes}/{self.val_scenes}; use version=v1.0-trainval')
        if self.samples_per_scene < 2:
            raise ValueError(f'samples_per_scene={self.samples_per_scene}: need >= 2 so that '
                             'every instance has a velocity')
        if self.cam_sweeps < 0 or self.lidar_sweeps < 0:
            raise ValueError('cam_sweeps and lidar_sweeps must be >= 0')
        w, h = self.image_size
        if not (64 <= w <= 4096 and 64 <= h <= 4096):
            raise ValueError(f'image_size={self.image_size}: width and height must be in 64..4096')
        from .constants import OBJECT_CLASSES
        unknown = sorted(set(self.object_counts) - set(OBJECT_CLASSES))
        if unknown:
            raise ValueError(f'unknown object classes {unknown}; allowed: {sorted(OBJECT_CLASSES)}')
        negative = {k: v for k, v in self.object_counts.items() if v < 0}
        if negative:
            raise ValueError(f'object_counts must be >= 0, got {negative}')
        if self.lidar_azimuths < 16:
            raise ValueError(f'lidar_azimuths={self.lidar_azimuths}: need >= 16')


def scene_names(version: str, n_train: int, n_val: int) -> Tuple[List[str], List[str]]:
    """Names of real nuScenes scenes of the right split, so the devkit's split checks pass."""
    from nuscenes.utils.splits import create_splits_scenes
    splits = create_splits_scenes()
    train_key, val_key = ('mini_train', 'mini_val') if version == 'v1.0-mini' else ('train', 'val')

    def ok(name):
        return int(name[-4:]) not in _CAN_BLACKLIST

    train = [n for n in sorted(splits[train_key]) if ok(n)]
    val = [n for n in sorted(splits[val_key]) if ok(n)]
    if len(train) < n_train or len(val) < n_val:
        raise ValueError(f'{version} has only {len(train)} train / {len(val)} val scene names, '
                         f'asked for {n_train} / {n_val}')
    return train[:n_train], val[:n_val]


@functools.lru_cache(maxsize=1)
def _train_split_names() -> frozenset:
    """Names in nuScenes' ``train`` or ``mini_train`` split."""
    from nuscenes.utils.splits import create_splits_scenes
    splits = create_splits_scenes()
    return frozenset(splits['train']) | frozenset(splits['mini_train'])


def scene_number(name: str) -> int:
    """The number of a nuScenes scene name: ``'scene-0061'`` -> 61."""
    match = re.fullmatch(r'scene-(\d{4})', name)
    if match is None:
        raise ValueError(f'scene name {name!r} is not of the form scene-NNNN')
    return int(match.group(1))


def scene_seed(seed: int, name: str, split: str) -> List[int]:
    """Entropy of a scene's random generator: the config seed and a stable hash of its name.

    Everything random in a scene (road, ego path, objects, sensor noise) derives from it, so a
    scene is the same in every set that holds it (with the same per-scene settings), whatever its
    position there, and a val scene never equals a train scene. nuScenes' ``mini_train`` lists
    two ``val`` scenes (scene-0553, scene-0796): as val scenes these (any name that a train split
    also lists) are hashed as ``'val/<name>'``, so they differ from the train scenes of that name.
    ``hashlib`` rather than ``hash()``: Python salts the latter per process.
    """
    if split not in ('train', 'val'):
        raise ValueError(f'split must be train or val, got {split!r}')
    key = f'val/{name}' if split == 'val' and name in _train_split_names() else name
    digest = hashlib.sha256(key.encode('utf-8')).digest()
    return [seed, int.from_bytes(digest[:8], 'little')]


def _scene_origin(number: int) -> Tuple[float, float]:
    """Global (x, y) origin in metres of scene ``number``'s road.

    A scene's location is ``LOCATIONS[number % 4]``; there, ``(number // 4) % 9`` picks one of
    nine places on a 3 x 3 grid 900 m apart (a road spans at most ~330 m from its origin), so
    coordinates stay within ~3 km as in nuScenes (float32 pipelines keep mm precision) and up to
    nine scenes of consecutive numbers per location never overlap on the map. Scenes further
    apart may share a place: their roads then overlap in the map expansion only (each scene's
    sensors see its own world).
    """
    slot = (number // len(LOCATIONS)) % 9
    col, row = slot % 3, slot // 3
    return 600.0 + 900.0 * col, 700.0 + 900.0 * row + 53.0 * col


class _Tokens:
    """Deterministic 32-hex tokens."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, *parts) -> str:
        return hashlib.md5(('/'.join(map(str, (self.seed,) + parts))).encode()).hexdigest()


@dataclass
class _Tables:
    names = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor',
             'ego_pose', 'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map')
    rows: Dict[str, list] = field(default_factory=lambda: {n: [] for n in _Tables.names})

    def add(self, table: str, **row) -> dict:
        self.rows[table].append(row)
        return row


def existing_tables(root: str) -> List[str]:
    """Paths (relative to ``root``) of nuScenes tables ``<root>/v1.0-*/*.json`` already there."""
    if not os.path.isdir(root):
        return []
    found = []
    for d in sorted(os.listdir(root)):
        table_dir = os.path.join(root, d)
        if d.startswith('v1.0-') and os.path.isdir(table_dir):
            found.extend(f'{d}/{f}' for f in sorted(os.listdir(table_dir)) if f.endswith('.json'))
    return found


def generate_synthetic_nuscenes(root: str, config: Optional[SyntheticNuScenesConfig] = None,
                                progress: bool = True, overwrite: bool = False,
                                workers: int = 1) -> dict:
    """Generate the data set under ``root``.

    Args:
        overwrite: write even where ``root`` already holds nuScenes tables (``v1.0-*/*.json``,
            of any version: the sensor files and maps share the root). The tables of
            ``config.version`` are replaced; other files of the old set stay.
        workers: processes simulating scenes side by side (>= 1). Each scene depends only on
            the seed and its name, and its table rows are appended in scene order, so the set
            is the same file for file whatever the number of workers.
    Returns:
        A summary: version, scene names per split, numbers of samples, sample_data,
        annotations and instances, and annotations per detection class.
    Raises:
        ValueError: a bad config. FileExistsError: ``root`` holds tables and not ``overwrite``.
    """
    cfg = config or SyntheticNuScenesConfig()
    cfg.validate()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f'workers={workers!r}: need an integer >= 1')
    tables_there = existing_tables(root)
    if tables_there and not overwrite:
        shown = ', '.join(tables_there[:3]) + (' ...' if len(tables_there) > 3 else '')
        raise FileExistsError(
            f'{root!r} already holds nuScenes tables ({shown}); generating there would overwrite '
            'them and mix synthetic files into its samples/, sweeps/ and maps/. Choose a new or '
            'empty folder, or pass overwrite=True (make_synthetic_nuscenes.py --overwrite) to '
            'replace them')
    tok = _Tokens(cfg.seed)
    tables = _Tables()
    _static_tables(tables, tok)
    train, val = scene_names(cfg.version, cfg.train_scenes, cfg.val_scenes)
    os.makedirs(os.path.join(root, cfg.version), exist_ok=True)
    for sub in ('samples', 'sweeps'):
        for ch in CAMERAS + (LIDAR,):
            os.makedirs(os.path.join(root, sub, ch), exist_ok=True)
    layouts: Dict[str, List[RoadLayout]] = {loc: [] for loc in LOCATIONS}
    names = [(n, 'train') for n in train] + [(n, 'val') for n in val]
    bar = _progress(len(names), progress)
    jobs = [(root, cfg, name, split) for name, split in names]
    for (name, _), (location, layout, rows) in zip(names, _map_scenes(jobs, workers)):
        layouts[location].append(layout)
        for t, scene_rows in rows.items():
            tables.rows[t].extend(scene_rows)
        bar(name)
    for t in tables.names:
        if t != 'map':
            _dump(os.path.join(root, cfg.version, f'{t}.json'), tables.rows[t])
    _write_maps(root, cfg, tok, tables, layouts)
    return _summary(cfg, tables, train, val)


def _write_scene(job) -> Tuple[str, RoadLayout, Dict[str, list]]:
    """Simulate one scene and write its sensor files; return its location, road layout and
    table rows (the rows it adds, in order)."""
    root, cfg, name, split = job
    number = scene_number(name)
    location = LOCATIONS[number % len(LOCATIONS)]
    rng = np.random.default_rng(scene_seed(cfg.seed, name, split))
    layout = RoadLayout(origin=_scene_origin(number),
                        heading=float(rng.uniform(-math.pi, math.pi)),
                        u_range=(-150.0, 300.0), cross_u=float(rng.uniform(25, 70)),
                        carpark_u=float(rng.uniform(-60, -10)))
    tables = _Tables()
    _SceneWriter(root, cfg, _Tokens(cfg.seed), tables, name, number, location, layout,
                 rng).write()
    return location, layout, tables.rows


def _map_scenes(jobs: list, workers: int):
    """``_write_scene`` over ``jobs``, results in job order; ``workers`` processes (forked)."""
    if workers == 1 or len(jobs) == 1:
        yield from map(_write_scene, jobs)
        return
    import multiprocessing
    with multiprocessing.get_context('fork').Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_write_scene, jobs)


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    if not enabled or tqdm is None:
        return lambda name: None
    bar = tqdm(total=total, desc='synthetic nuScenes', unit='scene')

    def step(name):
        bar.set_postfix_str(name)
        bar.update(1)
        if bar.n == total:
            bar.close()
    return step


def _dump(path: str, obj) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f)


def _static_tables(tables: _Tables, tok: _Tokens) -> None:
    for name in CATEGORIES:
        tables.add('category', token=tok('category', name), name=name, description=name)
    for name in ATTRIBUTES:
        tables.add('attribute', token=tok('attribute', name), name=name, description=name)
    for level, desc in (('1', 'v0-40'), ('2', 'v40-60'), ('3', 'v60-80'), ('4', 'v80-100')):
        tables.add('visibility', token=level, level=desc, description=f'visibility of {desc}%')
    for ch in CAMERAS:
        tables.add('sensor', token=tok('sensor', ch), channel=ch, modality='camera')
    tables.add('sensor', token=tok('sensor', LIDAR), channel=LIDAR, modality='lidar')


def _visibility(num_pts: int) -> str:
    return '1' if num_pts == 0 else '2' if num_pts < 10 else '3' if num_pts < 40 else '4'


class _SceneWriter:
    """Simulates one scene and appends its rows; writes its sensor files."""

    def __init__(self, root, cfg, tok, tables, name, number, location, layout, rng):
        self.root, self.cfg, self.tok, self.t = root, cfg, tok, tables
        self.name, self.number, self.location = name, number, location
        self.rng = rng
        # start time and log name from the scene number: the same in every set holding the scene
        self.t0_us = 1_533_000_000_000_000 + number * 100_000_000
        self.logfile = f'n{15 + number % 3:03d}-2018-08-{1 + number % 28:02d}-10-00-{number % 60:02d}+0800'
        n = cfg.samples_per_scene
        duration = (n - 1) * KEYFRAME_INTERVAL_US / 1e6
        speed = float(rng.choice([0.0, rng.uniform(2.0, 9.0)], p=[0.15, 0.85]))
        ego = Ego(u0=float(rng.uniform(-20, 0)), speed=speed)
        times = np.arange(0.0, duration + 0.2, 0.1)
        self.world: SceneWorld = build_world(layout, ego, times, cfg.object_counts, rng)
        self.scale = cfg.image_size[0] / NUSCENES_IMAGE_SIZE[0]
        self.prev_sd: Dict[str, Optional[dict]] = {ch: None for ch in CAMERAS + (LIDAR,)}

    # --- calibration -----------------------------------------------------------------------
    def _calibration(self) -> None:
        self.calib: Dict[str, dict] = {}
        self.cam2ego: Dict[str, np.ndarray] = {}
        self.intrinsic: Dict[str, np.ndarray] = {}
        for ch in CAMERAS:
            r = CAMERA_RIG[ch]
            rot = camera_rotation(math.radians(r['yaw_deg']))
            k = scaled_intrinsic(r['focal'], r['cx'], r['cy'], self.scale)
            self.cam2ego[ch] = make_transform(rot, r['translation'])
            self.intrinsic[ch] = k
            self.calib[ch] = self.t.add(
                'calibrated_sensor', token=self.tok('calib', self.name, ch),
                sensor_token=self.tok('sensor', ch), translation=list(r['translation']),
                rotation=matrix_to_quaternion(rot), camera_intrinsic=k.tolist())
        lidar_rot = quaternion_to_matrix(yaw_quaternion(math.radians(LIDAR_YAW_DEG)))
        self.lidar2ego = make_transform(lidar_rot, LIDAR_TRANSLATION)
        self.calib[LIDAR] = self.t.add(
            'calibrated_sensor', token=self.tok('calib', self.name, LIDAR),
            sensor_token=self.tok('sensor', LIDAR), translation=list(LIDAR_TRANSLATION),
            rotation=yaw_quaternion(math.radians(LIDAR_YAW_DEG)), camera_intrinsic=[])

    def ego2global(self, t_s: float) -> np.ndarray:
        trans, yaw = self.world.ego_pose(t_s)
        return make_transform(quaternion_to_matrix(yaw_quaternion(yaw)), trans)

    # --- main -------------------------------------------------------------------------------
    def write(self) -> None:
        self._calibration()
        log_token = self.tok('log', self.name)
        self.t.add('log', token=log_token, logfile=self.logfile, vehicle=self.logfile[:4],
                   date_captured=self.logfile[5:15], location=self.location)
        n = self.cfg.samples_per_scene
        sample_tokens = [self.tok('sample', self.name, k) for k in range(n)]
        scene_token = self.tok('scene', self.name)
        self.t.add('scene', token=scene_token, log_token=log_token, nbr_samples=n,
                   first_sample_token=sample_tokens[0], last_sample_token=sample_tokens[-1],
                   name=self.name, description=f'synthetic {self.location} scene, seed {self.cfg.seed}')
        per_instance: Dict[int, List[Tuple[int, dict, int]]] = {}
        for k in range(n):
            ts = self.t0_us + k * KEYFRAME_INTERVAL_US
            self.t.add('sample', token=sample_tokens[k], timestamp=ts,
                       prev=sample_tokens[k - 1] if k else '',
                       next=sample_tokens[k + 1] if k + 1 < n else '', scene_token=scene_token)
            if k:
                self._sweeps(sample_tokens[k], ts - KEYFRAME_INTERVAL_US, ts)
            points_global, lidar2global = self._lidar(sample_tokens[k], ts, key=True)
            cams = [self._camera(sample_tokens[k], ch, ts, key=True) for ch in CAMERAS]
            boxes = self.world.boxes_at((ts - self.t0_us) / 1e6)
            ego_xy = self.ego2global((ts - self.t0_us) / 1e6)[:2, 3]
            for b in boxes:
                agent = b.get('agent')
                if agent is None or np.linalg.norm(b['center'][:2] - ego_xy) > ANNOTATION_RANGE:
                    continue
                pts = int(points_in_box(points_global[:, :3], b).sum())
                per_instance.setdefault(agent.index, []).append((k, b, pts))
            if self.cfg.occupancy:
                self._occupancy(sample_tokens[k], boxes, ts, points_global[:, :3], lidar2global, cams)
        self._annotations(per_instance, sample_tokens)
        self._can_bus()

    # --- sensors ----------------------------------------------------------------------------
    def _sample_data(self, ch, sample_token, ts, key, filename, width=0, height=0) -> dict:
        pose_token = self.tok('ego_pose', self.name, ch, ts)
        trans, yaw = self.world.ego_pose((ts - self.t0_us) / 1e6)
        self.t.add('ego_pose', token=pose_token, timestamp=ts, rotation=yaw_quaternion(yaw),
                   translation=trans.tolist())
        row = self.t.add('sample_data', token=self.tok('sample_data', self.name, ch, ts),
                         sample_token=sample_token, ego_pose_token=pose_token,
                         calibrated_sensor_token=self.calib[ch]['token'], timestamp=ts,
                         fileformat='jpg' if ch != LIDAR else 'pcd', is_key_frame=key,
                         height=height, width=width, filename=filename, prev='', next='')
        prev = self.prev_sd[ch]
        if prev is not None:
            prev['next'] = row['token']
            row['prev'] = prev['token']
        self.prev_sd[ch] = row
        return row

    def _lidar(self, sample_token, ts, key):
        rel = f'{"samples" if key else "sweeps"}/{LIDAR}/{self.logfile}__{LIDAR}__{ts}.pcd.bin'
        self._sample_data(LIDAR, sample_token, ts, key, rel)
        t_s = (ts - self.t0_us) / 1e6
        lidar2global = self.ego2global(t_s) @ self.lidar2ego
        points, _ = cast(self.world.boxes_at(t_s), lidar2global, self.cfg.lidar_azimuths, self.rng)
        points.tofile(os.path.join(self.root, rel))
        glob = points[:, :3].astype(np.float64) @ lidar2global[:3, :3].T + lidar2global[:3, 3]
        return glob, lidar2global

    def _camera(self, sample_token, ch, ts_lidar, key):
        ts = ts_lidar + int(CAMERA_RIG[ch]['time_offset'] * 1e6)
        rel = f'{"samples" if key else "sweeps"}/{ch}/{self.logfile}__{ch}__{ts}.jpg'
        w, h = self.cfg.image_size
        self._sample_data(ch, sample_token, ts, key, rel, width=w, height=h)
        t_s = (ts - self.t0_us) / 1e6
        cam2global = self.ego2global(t_s) @ self.cam2ego[ch]
        img = render_camera(self.world.layout, self.world.boxes_at(t_s), cam2global,
                            self.intrinsic[ch], self.cfg.image_size)
        save_jpeg(img, os.path.join(self.root, rel), self.cfg.jpeg_quality)
        return cam2global, self.intrinsic[ch], self.cfg.image_size

    def _sweeps(self, next_sample_token, ts_prev, ts_next) -> None:
        """Non-key frames strictly between two key frames; they belong to the next sample."""
        events = []
        for j in range(1, self.cfg.lidar_sweeps + 1):
            events.append((ts_prev + j * (ts_next - ts_prev) // (self.cfg.lidar_sweeps + 1), LIDAR))
        for j in range(1, self.cfg.cam_sweeps + 1):
            base = ts_prev + j * (ts_next - ts_prev) // (self.cfg.cam_sweeps + 1)
            events.extend((base, ch) for ch in CAMERAS)
        for ts, ch in sorted(events, key=lambda e: (e[0], e[1])):
            if ch == LIDAR:
                self._lidar(next_sample_token, ts, key=False)
            else:
                self._camera(next_sample_token, ch, ts, key=False)

    # --- annotations ------------------------------------------------------------------------
    def _annotations(self, per_instance, sample_tokens) -> None:
        for idx, anns in sorted(per_instance.items()):
            if len(anns) < 2:
                continue  # every instance is annotated at least twice (defined velocity)
            agent = anns[0][1]['agent']
            inst_token = self.tok('instance', self.name, idx)
            tokens = [self.tok('annotation', self.name, idx, k) for k, _, _ in anns]
            attr = agent.attribute
            for j, (k, b, pts) in enumerate(anns):
                self.t.add('sample_annotation', token=tokens[j], sample_token=sample_tokens[k],
                           instance_token=inst_token, visibility_token=_visibility(pts),
                           attribute_tokens=[self.tok('attribute', attr)] if attr else [],
                           translation=b['center'].tolist(), size=list(b['wlh']),
                           rotation=yaw_quaternion(b['yaw']),
                           prev=tokens[j - 1] if j else '',
                           next=tokens[j + 1] if j + 1 < len(tokens) else '',
                           num_lidar_pts=pts, num_radar_pts=0)
            self.t.add('instance', token=inst_token,
                       category_token=self.tok('category', agent.kind.category),
                       nbr_annotations=len(anns), first_annotation_token=tokens[0],
                       last_annotation_token=tokens[-1])

    def _occupancy(self, sample_token, boxes, ts, points_global, lidar2global, cams) -> None:
        labels = occupancy_labels(self.world.layout, boxes, self.ego2global((ts - self.t0_us) / 1e6),
                                  points_global, lidar2global[:3, 3], cams)
        out = os.path.join(self.root, 'gts', self.name, sample_token)
        os.makedirs(out, exist_ok=True)
        np.savez_compressed(os.path.join(out, 'labels.npz'), **labels)

    def _can_bus(self) -> None:
        """``can_bus/<scene>_pose.json``: 50 Hz ego pose messages (the BEVFormer converter's input)."""
        n = self.cfg.samples_per_scene
        duration = (n - 1) * KEYFRAME_INTERVAL_US / 1e6
        msgs = []
        for t in np.arange(-0.5, duration + 0.5, 0.02):
            trans, yaw = self.world.ego_pose(t)
            _, yaw_next = self.world.ego_pose(t + 0.02)
            u_dot = self.world.ego.speed
            msgs.append(dict(utime=int(self.t0_us + t * 1e6), pos=trans.tolist(),
                             orientation=yaw_quaternion(yaw), vel=[u_dot, 0.0, 0.0],
                             accel=[0.0, 0.0, 9.81], rotation_rate=[0.0, 0.0, (yaw_next - yaw) / 0.02]))
        os.makedirs(os.path.join(self.root, 'can_bus'), exist_ok=True)
        _dump(os.path.join(self.root, 'can_bus', f'{self.name}_pose.json'), msgs)


# --- maps ------------------------------------------------------------------------------------
def _write_maps(root: str, cfg, tok: _Tokens, tables: _Tables,
                layouts: Dict[str, List[RoadLayout]]) -> None:
    """``map.json`` with one semantic-prior PNG per used location, and the map expansion.

    The semantic-prior PNG is a small placeholder (the devkit only asserts that it exists and
    reads it lazily); the drivable-area geometry that map tasks use is in the expansion JSONs.
    """
    os.makedirs(os.path.join(root, 'maps', 'expansion'), exist_ok=True)
    logs_by_loc: Dict[str, List[str]] = {}
    for log in tables.rows['log']:
        logs_by_loc.setdefault(log['location'], []).append(log['token'])
    for loc, logs in logs_by_loc.items():
        token = tok('map', loc)
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(os.path.join(root, 'maps', f'{token}.png'))
        tables.add('map', token=token, log_tokens=logs, category='semantic_prior',
                   filename=f'maps/{token}.png')
    _dump(os.path.join(root, cfg.version, 'map.json'), tables.rows['map'])
    for loc in LOCATIONS:
        _dump(os.path.join(root, 'maps', 'expansion', f'{loc}.json'),
              _map_expansion([lay.map_polygons() for lay in layouts[loc]], tok, loc))


def _map_expansion(per_scene: Sequence[dict], tok: _Tokens, loc: str) -> dict:
    m = {k: [] for k in ('node', 'line', 'polygon', 'drivable_area', 'road_segment', 'road_block',
                         'lane', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area',
                         'road_divider', 'lane_divider', 'traffic_light', 'lane_connector')}
    m.update(version='1.3', arcline_path_3={}, connectivity={})
    counter = iter(range(10 ** 9))

    def nodes(ring):
        out = []
        for x, y in ring:
            t = tok('node', loc, next(counter))
            m['node'].append(dict(token=t, x=float(x), y=float(y)))
            out.append(t)
        return out

    def polygon(ring):
        t = tok('polygon', loc, next(counter))
        m['polygon'].append(dict(token=t, exterior_node_tokens=nodes(ring), holes=[]))
        return t

    def line(points):
        t = tok('line', loc, next(counter))
        m['line'].append(dict(token=t, node_tokens=nodes(points)))
        return t

    max_xy = np.zeros(2)
    for polys in per_scene:
        for ring in polys['drivable_area']:
            max_xy = np.maximum(max_xy, np.max(ring, axis=0))
        da = tok('drivable_area', loc, next(counter))
        m['drivable_area'].append(dict(token=da, polygon_tokens=[polygon(r) for r in polys['drivable_area']]))
        for r in polys['road_segment']:
            m['road_segment'].append(dict(token=tok('road_segment', loc, next(counter)),
                                          polygon_token=polygon(r), is_intersection=False,
                                          drivable_area_token=da))
        for r in polys['lane']:
            m['lane'].append(dict(token=tok('lane', loc, next(counter)), polygon_token=polygon(r),
                                  lane_type='CAR', from_edge_line_token=None,
                                  to_edge_line_token=None, left_lane_divider_segments=[],
                                  right_lane_divider_segments=[]))
        crossings = []
        for r in polys['ped_crossing']:
            crossings.append(tok('ped_crossing', loc, next(counter)))
            m['ped_crossing'].append(dict(token=crossings[-1], polygon_token=polygon(r),
                                          road_segment_token=None))
        for r in polys['walkway']:
            m['walkway'].append(dict(token=tok('walkway', loc, next(counter)), polygon_token=polygon(r)))
        for r in polys['stop_line']:
            m['stop_line'].append(dict(token=tok('stop_line', loc, next(counter)),
                                       polygon_token=polygon(r), stop_line_type='PED_CROSSING',
                                       ped_crossing_tokens=crossings, traffic_light_tokens=[],
                                       road_block_token=None))
        for r in polys['carpark_area']:
            m['carpark_area'].append(dict(token=tok('carpark', loc, next(counter)),
                                          polygon_token=polygon(r), orientation=0.0,
                                          road_block_token=None))
        for pts in polys['road_divider']:
            m['road_divider'].append(dict(token=tok('road_divider', loc, next(counter)),
                                          line_token=line(pts), road_segment_token=None))
        for pts in polys['lane_divider']:
            m['lane_divider'].append(dict(token=tok('lane_divider', loc, next(counter)),
                                          line_token=line(pts), lane_divider_segments=[]))
    m['canvas_edge'] = [float(max_xy[0] + 200), float(max_xy[1] + 200)]
    return m


def _summary(cfg, tables: _Tables, train, val) -> dict:
    cat_name = {c['token']: c['name'] for c in tables.rows['category']}
    inst_cat = {i['token']: cat_name[i['category_token']] for i in tables.rows['instance']}
    per_cat: Dict[str, int] = {}
    for a in tables.rows['sample_annotation']:
        c = inst_cat[a['instance_token']]
        per_cat[c] = per_cat.get(c, 0) + 1
    return dict(version=cfg.version, train_scenes=train, val_scenes=val,
                samples=len(tables.rows['sample']), sample_data=len(tables.rows['sample_data']),
                annotations=len(tables.rows['sample_annotation']),
                instances=len(tables.rows['instance']), annotations_per_category=per_cat)
