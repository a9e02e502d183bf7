"""SparseBEV data transforms: multi-sweep camera loading and the image / BEV augmentations.

Pipeline (train; test uses ``test_mode=True`` / ``training=False`` and no annotations)::

    LoadMultiViewImageFromMultiSweeps -> LoadAnnotations3D -> ObjectRangeFilter
        -> ObjectNameFilter -> RandomTransformImage -> GlobalRotScaleTransImage
        -> Pack3DDetInputs(keys=['img', ...], meta_keys=[..., 'lidar2img', 'img_timestamp'])

Images are frame-major: the key frame's N cameras first, then each sweep's, newest first.
``lidar2img[i]`` maps the CURRENT LiDAR frame to image ``i`` (the ego motion between the
sweep and the key frame is inside it); ``img_timestamp[i]`` is in seconds.
"""
from __future__ import annotations

import logging
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmdet3d.registry import TRANSFORMS

SPARSEBEV_CAMS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
                  'CAM_BACK_RIGHT')


def sweep_lidar2img(lidar2ego: np.ndarray, ego2global: np.ndarray, sweep: dict) -> np.ndarray:
    """``(4, 4)`` current-LiDAR -> sweep image: ``K · inv(cam2ego_s) · inv(ego2global_s) ·
    ego2global · lidar2ego`` (upstream's ``compose_lidar2img``).

    Args:
        lidar2ego, ego2global: the key frame's LiDAR extrinsics and ego pose (at LiDAR time).
        sweep: a ``cam_sweeps`` entry: ``ego2global`` (at the sweep's time), ``cam2ego``
            (4×4) and ``cam2img`` (3×3).
    """
    K = np.eye(4)
    K[:3, :3] = np.asarray(sweep['cam2img'], dtype=np.float64)[:3, :3]
    cam2global = (np.asarray(sweep['ego2global'], np.float64)
                  @ np.asarray(sweep['cam2ego'], np.float64))
    return K @ np.linalg.inv(cam2global) @ np.asarray(ego2global, np.float64) @ \
        np.asarray(lidar2ego, np.float64)


def choose_sweeps(num_available: int, sweeps_num: int, test_mode: bool,
                  train_interval: Tuple[int, int] = (4, 8), test_interval: int = 6,
                  rng: Optional[np.random.Generator] = None) -> Tuple[List[int], bool]:
    """Indices (0 = newest) into a camera's sweep list and whether a frame is repeated.

    As upstream: at test time every ``test_interval``-th sweep (≈0.5 s at 12 Hz); in
    training a random interval in ``train_interval`` (capped by what is available). When
    fewer sweeps exist than needed the earliest one is repeated (``repeated`` True); with
    none at all the list is empty (the caller repeats the key frame).
    """
    if sweeps_num == 0:
        return [], False
    if num_available <= 0:
        return [], True
    if test_mode:
        idx = [(k + 1) * test_interval - 1 for k in range(sweeps_num)]
    elif num_available <= sweeps_num:
        idx = list(range(num_available)) + [num_available - 1] * (sweeps_num - num_available)
    else:
        hi = min(num_available // sweeps_num, train_interval[1])
        lo = min(hi, train_interval[0])
        rng = rng or np.random.default_rng(np.random.randint(0, 2**31 - 1))
        interval = int(rng.integers(lo, hi + 1))
        idx = [(k + 1) * interval - 1 for k in range(sweeps_num)]
    chosen = [min(i, num_available - 1) for i in sorted(idx)]
    return chosen, len(set(chosen)) < len(chosen)


@TRANSFORMS.register_module()
class LoadMultiViewImageFromMultiSweeps(BaseTransform):
    """Load the key frame's and ``sweeps_num`` previous camera sweeps' images of every camera.

    Reads the mmdet3d v2 info fields ``images[cam]`` (``img_path`` with the data prefix,
    ``lidar2img`` or ``cam2img``·``lidar2cam``, ``timestamp`` s), ``lidar_points.lidar2ego``,
    ``ego2global`` and the plugin's ``cam_sweeps[cam]`` (newest first; ``img_path`` relative
    to ``data_root``; see ``ptqat.datasets.nuscenes_infos``). Writes ``img`` (list of T·N
    HxWx3 uint8 arrays, BGR as ``mmcv.imread``), ``lidar2img`` (T·N, 4, 4), ``img_timestamp``
    (T·N,), ``filename``, ``num_frames`` = T = 1 + sweeps_num, ``img_shape``/``ori_shape``.

    The sweeps available are the fewest any camera has (the cameras are not synchronous;
    all use the same sweep indices). Fewer sweeps than needed (scene start, short
    ``cam_sweeps``): the earliest available
    frame is repeated (the key frame when there is none), as upstream, and logged at INFO.
    A sweep image missing on disk raises ``FileNotFoundError`` naming it.

    Args:
        sweeps_num: previous frames per camera (7 upstream).
        data_root: root that ``cam_sweeps`` paths are relative to.
        test_mode: fixed interval (``test_interval``) instead of a random one.
        cams: camera order (upstream's by default).
        train_interval, test_interval: sweep spacing (in sweeps, 12 Hz).
        color_type: ``mmcv.imread`` flag.
    """

    def __init__(self, sweeps_num: int = 7, data_root: str = '', test_mode: bool = False,
                 cams: Sequence[str] = SPARSEBEV_CAMS, train_interval: Sequence[int] = (4, 8),
                 test_interval: int = 6, color_type: str = 'color'):
        if sweeps_num < 0:
            raise ValueError(f'sweeps_num must be >= 0, got {sweeps_num}')
        if len(train_interval) != 2 or not 1 <= train_interval[0] <= train_interval[1]:
            raise ValueError(f'train_interval must be (lo, hi) with 1 <= lo <= hi, got '
                             f'{train_interval}')
        self.sweeps_num, self.data_root, self.test_mode = sweeps_num, data_root, test_mode
        self.cams = tuple(cams)
        self.train_interval, self.test_interval = tuple(train_interval), test_interval
        self.color_type = color_type

    @staticmethod
    def _read(path: str, what: str, color_type: str) -> np.ndarray:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} image {path!r} does not exist')
        return mmcv.imread(path, color_type)

    def _key_frame(self, results: dict) -> Tuple[list, list, list, list]:
        imgs, mats, times, names = [], [], [], []
        for cam in self.cams:
            if cam not in results['images']:
                raise KeyError(f'camera {cam!r} missing from the info (has '
                               f'{sorted(results["images"])})')
            info = results['images'][cam]
            imgs.append(self._read(info['img_path'], f'key-frame {cam}', self.color_type))
            if 'lidar2img' in info:
                mats.append(np.asarray(info['lidar2img'], np.float64))
            else:
                K = np.eye(4)
                K[:3, :3] = np.asarray(info['cam2img'])[:3, :3]
                mats.append(K @ np.asarray(info['lidar2cam'], np.float64))
            times.append(float(info['timestamp']))
            names.append(info['img_path'])
        return imgs, mats, times, names

    def transform(self, results: dict) -> dict:
        imgs, mats, times, names = self._key_frame(results)
        sweeps = results.get('cam_sweeps')
        if self.sweeps_num and sweeps is None:
            raise KeyError('LoadMultiViewImageFromMultiSweeps needs `cam_sweeps` in the info '
                           '(tools/create_data.py adds it)')
        available = min(len(sweeps[c]) for c in self.cams) if self.sweeps_num else 0
        choices, repeated = choose_sweeps(available, self.sweeps_num, self.test_mode,
                                          self.train_interval, self.test_interval)
        if repeated:
            print_log(f'sample {results.get("token", results.get("sample_idx"))}: '
                      f'{available} camera sweeps available for {self.sweeps_num} previous '
                      f'frames: repeating the earliest frame', logger='current',
                      level=logging.INFO)
        key = (imgs, mats, times, names)
        lidar2ego = results['lidar_points']['lidar2ego']
        out = [list(x) for x in key]
        for k in range(self.sweeps_num):
            if not choices:  # no sweep at all: repeat the key frame
                for lst, src in zip(out, key):
                    lst.extend(np.copy(v) if isinstance(v, np.ndarray) else v for v in src)
                continue
            for cam in self.cams:
                sw = sweeps[cam][choices[k]]
                path = osp.join(self.data_root, sw['img_path'])
                out[0].append(self._read(path, f'camera sweep ({cam}, sweep {choices[k]})',
                                         self.color_type))
                out[1].append(sweep_lidar2img(lidar2ego, results['ego2global'], sw))
                out[2].append(float(sw['timestamp']))
                out[3].append(path)
        results['img'], results['filename'] = out[0], out[3]
        results['lidar2img'] = np.stack(out[1]).astype(np.float32)
        results['img_timestamp'] = np.asarray(out[2], dtype=np.float64)
        results['num_frames'] = 1 + self.sweeps_num
        results['num_views'] = len(self.cams)
        shape = out[0][0].shape[:2]
        results['img_shape'] = results['ori_shape'] = shape
        return results


def ida_matrix(resize: float, crop: Sequence[int], flip: bool) -> np.ndarray:
    """``(3, 3)`` pixel affine of the image augmentation: scale by ``resize``, shift by
    ``-crop[:2]``, mirror about the crop width when ``flip``."""
    m = np.eye(3)
    m[:2, :2] *= resize
    m[:2, 2] = -np.asarray(crop[:2], dtype=np.float64)
    if flip:
        f = np.eye(3)
        f[0, 0] = -1
        f[0, 2] = crop[2] - crop[0]
        m = f @ m
    return m


def ida_to_lidar2img(ida: np.ndarray) -> np.ndarray:
    """``(4, 4)`` left factor of ``lidar2img`` for a ``(3, 3)`` pixel affine: it acts on the
    homogeneous ``(u·d, v·d, d, 1)``, so the shift goes in the depth column."""
    m = np.eye(4)
    m[:2, :2] = ida[:2, :2]
    m[:2, 2] = ida[:2, 2]
    return m


@TRANSFORMS.register_module()
class RandomTransformImage(BaseTransform):
    """Upstream's image augmentation, one draw per sample for all T·N images: resize by
    ``resize_lim`` (train) or ``max(fH/H, fW/W)`` (test), crop to ``final_dim`` (bottom
    crop, random horizontal position in training), random flip; ``lidar2img`` is
    left-multiplied by the matching matrix. (Upstream's rotation range is 0 and not
    supported here.)

    Args:
        ida_aug_conf: ``resize_lim``, ``final_dim`` (fH, fW), ``bot_pct_lim``, ``rot_lim``
            (must be (0, 0)), ``H``, ``W`` (source size), ``rand_flip``.
        training: random draws.
    """

    def __init__(self, ida_aug_conf: dict, training: bool = True):
        missing = {'resize_lim', 'final_dim', 'bot_pct_lim', 'H', 'W', 'rand_flip'} - set(
            ida_aug_conf)
        if missing:
            raise KeyError(f'ida_aug_conf lacks {sorted(missing)}')
        if tuple(ida_aug_conf.get('rot_lim', (0.0, 0.0))) != (0.0, 0.0):
            raise ValueError(f'rot_lim {ida_aug_conf["rot_lim"]} is not supported (allowed: '
                             '(0.0, 0.0), as upstream)')
        self.conf, self.training = dict(ida_aug_conf), training

    def sample_augmentation(self) -> Tuple[float, Tuple[int, int], Tuple[int, ...], bool]:
        c = self.conf
        H, W = c['H'], c['W']
        fH, fW = c['final_dim']
        if self.training:
            resize = float(np.random.uniform(*c['resize_lim']))
        else:
            resize = max(fH / H, fW / W)
        newW, newH = int(W * resize), int(H * resize)
        if self.training:
            crop_h = int((1 - np.random.uniform(*c['bot_pct_lim'])) * newH) - fH
            crop_w = int(np.random.uniform(0, max(0, newW - fW)))
            flip = bool(c['rand_flip'] and np.random.choice([0, 1]))
        else:
            crop_h = int((1 - np.mean(c['bot_pct_lim'])) * newH) - fH
            crop_w = int(max(0, newW - fW) / 2)
            flip = False
        return resize, (newW, newH), (crop_w, crop_h, crop_w + fW, crop_h + fH), flip

    def transform(self, results: dict) -> dict:
        imgs = results['img']
        if len(imgs) != len(results['lidar2img']):
            raise ValueError(f'{len(imgs)} images but {len(results["lidar2img"])} lidar2img')
        h0, w0 = imgs[0].shape[:2]
        if (h0, w0) != (self.conf['H'], self.conf['W']):
            raise ValueError(f'image size {(h0, w0)} differs from ida_aug_conf (H, W) = '
                             f'{(self.conf["H"], self.conf["W"])}')
        resize, _, crop, flip = self.sample_augmentation()
        ida = ida_matrix(resize, crop, flip)
        fH, fW = self.conf['final_dim']
        results['img'] = [cv2.warpAffine(img, ida[:2], (fW, fH), flags=cv2.INTER_LINEAR)
                          for img in imgs]
        m = ida_to_lidar2img(ida)
        results['lidar2img'] = (m[None] @ np.asarray(results['lidar2img'], np.float64)).astype(
            np.float32)
        results['img_shape'] = results['pad_shape'] = (fH, fW)
        results['ida_aug'] = dict(resize=resize, crop=crop, flip=flip)
        return results


@TRANSFORMS.register_module()
class GlobalRotScaleTransImage(BaseTransform):
    """Upstream's BEV augmentation: rotate the GT boxes about z by a random angle and scale
    them; ``lidar2img`` is right-multiplied by the inverse so the images still match.

    Args:
        rot_range: radians. scale_ratio_range: scale factors.
    """

    def __init__(self, rot_range: Sequence[float] = (-0.3925, 0.3925),
                 scale_ratio_range: Sequence[float] = (0.95, 1.05)):
        self.rot_range, self.scale_ratio_range = tuple(rot_range), tuple(scale_ratio_range)

    @staticmethod
    def matrix(angle: float, scale: float) -> np.ndarray:
        """``(4, 4)`` scale · Rz(angle) (counter-clockwise)."""
        c, s = np.cos(angle), np.sin(angle)
        m = np.eye(4)
        m[:2, :2] = [[c, -s], [s, c]]
        m[:3, :3] *= scale
        return m

    def transform(self, results: dict) -> dict:
        angle = float(np.random.uniform(*self.rot_range))
        scale = float(np.random.uniform(*self.scale_ratio_range))
        boxes = results['gt_bboxes_3d']
        boxes.rotate(np.array(angle))
        boxes.scale(scale)
        inv = np.linalg.inv(self.matrix(angle, scale))
        results['lidar2img'] = (np.asarray(results['lidar2img'], np.float64) @ inv[None]).astype(
            np.float32)
        results['bev_aug'] = dict(rotation=angle, scale=scale)
        return results
