"""Ground-truth frame transforms of BEVDet: LiDAR -> key ego (``LidarToKeyEgo``) and the BEV
data augmentation ``BEVAug`` (bda).

Frames (all right-handed, z up):

* LiDAR: the LIDAR_TOP frame at the LiDAR timestamp; mmdet3d's ``NuScenesDataset`` gives the
  GT (``gt_bboxes_3d``: ``LiDARInstance3DBoxes``, bottom centre, 9-dim with velocity) here.
* key ego: the ego frame at the timestamp of the *key camera* (camera 0 of
  ``PrepareImageInputs.cams``, CAM_FRONT_LEFT for BEVDet). The cameras are placed in it by
  ``sensor2keyego``.
* BEV: ``bda @ key ego``; the model's grid, targets and raw predictions live here.

``lidar2keyego = inv(ego2global[key_cam]) @ ego2global_lidar @ lidar2ego``; the model maps its
predictions back to the LiDAR frame with ``inv(bda @ lidar2keyego)`` (so mmdet3d's stock
``NuScenesMetric`` works unchanged).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import BaseInstance3DBoxes
from ptqat.box_geometry import transform_boxes


def lidar2keyego_matrix(results: dict, key_cam: str) -> np.ndarray:
    """``inv(ego2global[key_cam]) @ ego2global @ lidar2ego`` (4×4 float64) from a v2 info."""
    e2g_key = np.asarray(results['images'][key_cam]['ego2global'], dtype=np.float64)
    e2g = np.asarray(results['ego2global'], dtype=np.float64)
    l2e = np.asarray(results['lidar_points']['lidar2ego'], dtype=np.float64)
    return np.linalg.inv(e2g_key) @ e2g @ l2e


@TRANSFORMS.register_module()
class LidarToKeyEgo(BaseTransform):
    """Move the GT boxes from the LiDAR frame into the key-ego frame; store ``lidar2keyego``.

    Required keys: ``ego2global`` (4×4, LiDAR time), ``lidar_points.lidar2ego`` (4×4),
    ``images[key_cam].ego2global`` (4×4, key-camera time); optional ``gt_bboxes_3d``
    (LiDAR frame, from ``LoadAnnotations3D``), ``key_cam`` (set by ``PrepareImageInputs``).

    Added / modified keys:

    * ``lidar2keyego``: float64 ndarray (4, 4), LiDAR -> key ego (also at test time, for the
      model's ``predict``);
    * ``gt_bboxes_3d``: same box type, in the key-ego frame: the gravity centre is moved as a
      point, the yaw and the velocity ``(vx, vy)`` are rotated (velocities are vectors: the
      translation does not apply).

    Args:
        key_cam (str, optional): Camera whose ego pose defines the key ego frame; default
            ``results['key_cam']`` (= ``PrepareImageInputs.cams[0]``), else CAM_FRONT_LEFT.
    """

    def __init__(self, key_cam: Optional[str] = None):
        self.key_cam = key_cam

    def transform(self, results: dict) -> dict:
        key_cam = self.key_cam or results.get('key_cam', 'CAM_FRONT_LEFT')
        lidar2keyego = lidar2keyego_matrix(results, key_cam)
        results['lidar2keyego'] = lidar2keyego
        boxes = results.get('gt_bboxes_3d', None)
        if isinstance(boxes, BaseInstance3DBoxes):
            results['gt_bboxes_3d'] = transform_boxes(boxes, lidar2keyego)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(key_cam={self.key_cam})'


def bda_matrix(rotate_deg: float, scale: float, flip_dx: bool, flip_dy: bool,
               translation: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """BEVDet's BEV augmentation ``bda`` (4×4 float64).

    ``bda[:3, :3] = F @ S @ R`` with ``R`` the rotation by ``rotate_deg`` about z
    (counter-clockwise seen from above), ``S = scale * I`` and ``F = diag(-1 if flip_dx,
    -1 if flip_dy, 1)`` (``flip_dx`` mirrors x, i.e. front <-> back); ``bda[:3, 3]`` is
    ``translation``.
    """
    a = rotate_deg / 180.0 * math.pi
    rot = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0],
                    [0.0, 0.0, 1.0]])
    flip = np.diag([-1.0 if flip_dx else 1.0, -1.0 if flip_dy else 1.0, 1.0])
    bda = np.eye(4)
    bda[:3, :3] = flip @ (scale * np.eye(3)) @ rot
    bda[:3, 3] = np.asarray(translation, dtype=np.float64)
    return bda


@TRANSFORMS.register_module()
class BEVAug(BaseTransform):
    """BEVDet's BEV data augmentation (bda) on the key-ego-frame GT.

    Train (``is_train=True``): rotation ``U(*rot_lim)`` degrees, scale ``U(*scale_lim)``,
    x flip with probability ``flip_dx_ratio``, y flip with probability ``flip_dy_ratio`` and
    an optional translation ``N(0, tran_lim)`` (upstream default: none); test: identity.

    The GT boxes (if any) are transformed like points (centre, heading and velocity by
    :func:`bda_matrix`, sizes times ``scale``); the same matrix goes to the view transformer,
    which applies it after ``sensor2keyego``, so the image features and the targets stay
    aligned. Point clouds are not transformed (BEVDet does not load them).

    Added keys: ``bda`` float32 (4, 4); ``bda_aug_params`` dict (``rotate`` degrees,
    ``scale``, ``flip_dx``, ``flip_dy``, ``translation``); ``gt_bboxes_3d`` moved into the
    BEV frame.

    Args:
        bda_aug_conf (dict): ``rot_lim`` (deg), ``scale_lim``, ``flip_dx_ratio``,
            ``flip_dy_ratio``, optional ``tran_lim`` (3 std devs, m). BEVDet:
            ``rot_lim=(-22.5, 22.5), scale_lim=(0.95, 1.05), flip_dx_ratio=0.5,
            flip_dy_ratio=0.5``.
        classes (sequence[str], optional): Accepted for upstream compatibility; unused.
        is_train (bool): As upstream, defaults to True.
    """

    def __init__(self,
                 bda_aug_conf: Optional[dict] = None,
                 classes: Optional[Sequence[str]] = None,
                 is_train: bool = True):
        self.bda_aug_conf = dict(bda_aug_conf or {})
        self.is_train = is_train

    def sample_bda_augmentation(self):
        """``rotate (deg), scale, flip_dx, flip_dy, translation (3,)``."""
        c = self.bda_aug_conf
        if not self.is_train:
            return 0.0, 1.0, False, False, np.zeros(3)
        rotate = float(np.random.uniform(*c.get('rot_lim', (0.0, 0.0))))
        scale = float(np.random.uniform(*c.get('scale_lim', (1.0, 1.0))))
        flip_dx = bool(np.random.uniform() < c.get('flip_dx_ratio', 0.0))
        flip_dy = bool(np.random.uniform() < c.get('flip_dy_ratio', 0.0))
        tran_lim = c.get('tran_lim', None)
        translation = (np.random.normal(scale=tran_lim, size=3)
                       if tran_lim is not None else np.zeros(3))
        return rotate, scale, flip_dx, flip_dy, translation

    def transform(self, results: dict) -> dict:
        rotate, scale, flip_dx, flip_dy, translation = self.sample_bda_augmentation()
        bda = bda_matrix(rotate, scale, flip_dx, flip_dy, translation)
        boxes = results.get('gt_bboxes_3d', None)
        if isinstance(boxes, BaseInstance3DBoxes):
            results['gt_bboxes_3d'] = transform_boxes(boxes, bda)
        results['bda'] = bda.astype(np.float32)
        results['bda_aug_params'] = dict(rotate=rotate, scale=scale, flip_dx=flip_dx,
                                         flip_dy=flip_dy, translation=translation.tolist())
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(bda_aug_conf={self.bda_aug_conf}, '
                f'is_train={self.is_train})')
