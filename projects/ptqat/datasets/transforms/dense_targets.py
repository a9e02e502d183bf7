"""Dense ground truth of the BEV models: Occ3D occupancy (``LoadOccGTFromFile``) and BEV map
masks (``LoadBEVSegmentation``), both in the model's BEV frame (``bda @ key ego``).

Both go after ``BEVAug`` (they read ``bda``) and, in a test pipeline (``test_mode=True``), also
store the *un-augmented* GT in ``results['eval_ann_info']`` for the metrics.
"""
from __future__ import annotations

import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from ptqat.bev_geometry import (MAP_SEG_BOUND, OCC3D_SHAPE, bda_flips, flip_occupancy, grid_size,
                                resample_bev_nearest)

#: map classes -> nuScenes map-expansion layers (BEVFusion; ``divider`` is the union)
MAP_LAYERS: Dict[str, tuple] = {
    'drivable_area': ('drivable_area',),
    'drivable_area*': ('road_segment', 'lane'),
    'ped_crossing': ('ped_crossing',),
    'walkway': ('walkway',),
    'stop_line': ('stop_line',),
    'carpark_area': ('carpark_area',),
    'road_divider': ('road_divider',),
    'lane_divider': ('lane_divider',),
    'divider': ('road_divider', 'lane_divider'),
}
OCC_KEYS = ('semantics', 'mask_lidar', 'mask_camera')


def _sample_name(results: dict) -> str:
    return str(results.get('token', results.get('sample_idx', '?')))


def _set_eval_gt(results: dict, **gt) -> None:
    """Add ``gt`` to ``results['eval_ann_info']`` when the dataset made one (test mode)."""
    if 'eval_ann_info' in results:
        if results['eval_ann_info'] is None:
            results['eval_ann_info'] = {}
        results['eval_ann_info'].update(gt)


@TRANSFORMS.register_module()
class LoadOccGTFromFile(BaseTransform):
    """Occ3D labels from ``<data_root>/<info occ_path>/labels.npz`` (BEVDet/FlashOcc layout).

    Added keys (``[x, y, z]``, ``(200, 200, 16)``, BEV frame, i.e. flipped with the BEV
    augmentation: ``flip_dx`` reverses dim 0, ``flip_dy`` dim 1):
    ``voxel_semantics`` uint8 labels 0..17, ``mask_camera`` / ``mask_lidar`` bool.
    In test mode the un-flipped arrays also go to ``eval_ann_info``.

    The labels are in the ego frame at the LiDAR timestamp; the model's BEV frame is the ego
    frame at the key camera's timestamp (tens of ms apart), which is ignored as upstream does.

    Args:
        data_root (str): prefix of a relative ``occ_path``.

    Raises:
        KeyError: the info has no ``occ_path`` (or it is None: no labels when the infos were made).
        FileNotFoundError: ``labels.npz`` is missing.
        ValueError: the file lacks a key or has the wrong shape, or the BEV augmentation is not
            a pure flip.
    """

    def __init__(self, data_root: str = ''):
        self.data_root = data_root

    def load(self, results: dict) -> Dict[str, np.ndarray]:
        """The three arrays of the sample's ``labels.npz``, un-augmented."""
        occ_path = results.get('occ_path', None)
        if not occ_path:
            raise KeyError(f'sample {_sample_name(results)} has no occ_path in its info: the '
                           'Occ3D labels (gts/<scene>/<token>/labels.npz) must exist when '
                           'tools/create_data.py runs')
        path = osp.join(self.data_root, occ_path, 'labels.npz')
        if not osp.isfile(path):
            raise FileNotFoundError(f'Occ3D labels file {path} of sample '
                                    f'{_sample_name(results)} does not exist')
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in OCC_KEYS if k not in z.files]
            if missing:
                raise ValueError(f'{path} lacks {missing}; has {z.files}')
            arrays = {k: np.asarray(z[k]) for k in OCC_KEYS}
        for k, v in arrays.items():
            if v.shape != OCC3D_SHAPE:
                raise ValueError(f'{path}: {k} has shape {v.shape}, expected {OCC3D_SHAPE}')
        return arrays

    def transform(self, results: dict) -> dict:
        a = self.load(results)
        sem = a['semantics'].astype(np.uint8)
        cam, lidar = a['mask_camera'].astype(bool), a['mask_lidar'].astype(bool)
        _set_eval_gt(results, voxel_semantics=sem, mask_camera=cam, mask_lidar=lidar)
        fdx, fdy = bda_flips(results['bda']) if 'bda' in results else (False, False)
        results['voxel_semantics'] = flip_occupancy(sem, fdx, fdy)
        results['mask_camera'] = flip_occupancy(cam, fdx, fdy)
        results['mask_lidar'] = flip_occupancy(lidar, fdx, fdy)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(data_root={self.data_root!r})'


@TRANSFORMS.register_module()
class LoadBEVSegmentation(BaseTransform):
    """BEV map masks rasterised from the nuScenes map expansion with ``NuScenesMap``.

    The masks are drawn around the key camera's ego pose (``images[key_cam].ego2global``), i.e.
    in the key-ego frame in which the model lifts its BEV features, then moved into the BEV
    frame ``bda @ key ego`` (nearest neighbour; flips are exact). Layout ``[y, x]`` like the
    BEVDet feature: row ``i`` is ``y = ybound[0] + step (i + 0.5)`` (left is larger y), column
    ``j`` is ``x`` (forward).

    Added keys: ``gt_masks_bev`` uint8 ``(C, ny, nx)`` 0/1 (classes may overlap); in test mode
    the un-augmented masks also go to ``eval_ann_info``.

    Needs ``location`` (``log.location``, added by ``tools/create_data.py``), ``images`` with
    the key camera's ``ego2global`` and ``<data_root>/maps/expansion/<location>.json``.
    The un-augmented masks are cached per sample token (packed bits, ``cache_size`` samples
    per process), so each sample is rasterised once per data-loader worker.

    Args:
        data_root (str): nuScenes root (holding ``maps/expansion``).
        classes (sequence[str]): keys of :data:`MAP_LAYERS`.
        xbound, ybound (sequence[float]): ``(min, max, step)`` metres; BEVFusion: ±50 m, 0.5 m.
        key_cam (str, optional): default ``results['key_cam']`` else CAM_FRONT_LEFT.
        cache_size (int): cached samples per process (0 disables the cache).
    """

    def __init__(self, data_root: str, classes: Sequence[str] = ('drivable_area', 'ped_crossing',
                                                                 'walkway', 'stop_line',
                                                                 'carpark_area', 'divider'),
                 xbound: Sequence[float] = MAP_SEG_BOUND, ybound: Sequence[float] = MAP_SEG_BOUND,
                 key_cam: Optional[str] = None, cache_size: int = 4096):
        unknown = [c for c in classes if c not in MAP_LAYERS]
        if unknown or not classes:
            raise ValueError(f'unknown map classes {unknown or classes}; allowed: '
                             f'{sorted(MAP_LAYERS)}')
        self.data_root = data_root
        self.classes = tuple(classes)
        self.xbound, self.ybound = tuple(xbound), tuple(ybound)
        self.shape = (grid_size(self.ybound), grid_size(self.xbound))
        self.key_cam = key_cam
        self.cache_size = cache_size
        self._maps: dict = {}
        self._cache: OrderedDict = OrderedDict()

    def nusc_map(self, location: str):
        """The (lazily loaded) ``NuScenesMap`` of ``location``."""
        if location not in self._maps:
            from nuscenes.map_expansion.map_api import NuScenesMap, locations
            if location not in locations:
                raise ValueError(f'unknown map location {location!r}; allowed: {list(locations)}')
            path = osp.join(self.data_root, 'maps', 'expansion', f'{location}.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'map expansion file {path} for location {location!r} '
                                        'does not exist (nuScenes map expansion v1.3)')
            self._maps[location] = NuScenesMap(dataroot=self.data_root, map_name=location)
        return self._maps[location]

    def rasterise(self, location: str, ego2global: np.ndarray) -> np.ndarray:
        """``(C, ny, nx)`` uint8 masks in the ``[y, x]`` grid of the ego pose ``ego2global``."""
        e2g = np.asarray(ego2global, dtype=np.float64)
        cx = (self.xbound[0] + self.xbound[1]) / 2
        cy = (self.ybound[0] + self.ybound[1]) / 2
        centre = e2g[:3, :3] @ np.array([cx, cy, 0.0]) + e2g[:3, 3]
        yaw = math.degrees(math.atan2(e2g[1, 0], e2g[0, 0]))
        patch = (centre[0], centre[1], self.ybound[1] - self.ybound[0],
                 self.xbound[1] - self.xbound[0])  # (x, y, height along y, width along x)
        layers = sorted({layer for c in self.classes for layer in MAP_LAYERS[c]})
        raw = self.nusc_map(location).get_map_mask(patch, yaw, layers, canvas_size=self.shape)
        by_layer = dict(zip(layers, raw))
        return np.stack([np.max([by_layer[layer] for layer in MAP_LAYERS[c]], axis=0)
                         for c in self.classes]).astype(np.uint8)

    def keyego_masks(self, results: dict) -> np.ndarray:
        """Un-augmented masks of the sample (cached)."""
        location = results.get('location', None)
        if not location:
            raise KeyError(f'sample {_sample_name(results)} has no location in its info: '
                           're-create the infos with tools/create_data.py')
        key_cam = self.key_cam or results.get('key_cam', 'CAM_FRONT_LEFT')
        key = (_sample_name(results), key_cam)
        if key in self._cache:
            self._cache.move_to_end(key)
            packed = self._cache[key]
            return np.unpackbits(packed, count=int(np.prod(self.shape)) * len(self.classes)
                                 ).reshape(len(self.classes), *self.shape)
        masks = self.rasterise(location, results['images'][key_cam]['ego2global'])
        if self.cache_size > 0:
            self._cache[key] = np.packbits(masks.astype(bool))
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return masks

    def transform(self, results: dict) -> dict:
        masks = self.keyego_masks(results)
        _set_eval_gt(results, gt_masks_bev=masks)
        if 'bda' in results:
            masks = resample_bev_nearest(masks, results['bda'], self.xbound, self.ybound)
        results['gt_masks_bev'] = masks
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(classes={self.classes}, xbound={self.xbound}, '
                f'ybound={self.ybound})')
