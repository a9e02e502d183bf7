"""Occ3D-nuScenes labels for a key frame: 200×200×16 voxels of 0.4 m in the ego frame.

Labels (``semantics``): ground voxels take the layout's ground class (driveable_surface,
other_flat = car park, sidewalk, terrain), voxels whose centre lies in a box take the box's
class (objects, walls = manmade, trees = vegetation), everything else is free (17).
``mask_lidar`` marks voxels the key-frame lidar observed (voxels holding a return, and free
voxels its rays crossed); ``mask_camera`` marks voxels some camera sees: the centre projects into the image
and is no farther than the first surface along that pixel's ray (a per-camera depth buffer
ray-cast at 1/8 resolution against the ground and every box), plus half a voxel.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np

from .constants import OCC_FREE
from .layout import GROUND_OCC, RoadLayout
from .lidar import points_in_box, ray_box_distance

OCC_RANGE = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
OCC_VOXEL = 0.4
OCC_SHAPE = (200, 200, 16)


def voxel_centers_ego() -> np.ndarray:
    """(200, 200, 16, 3) voxel centres in the ego frame, indexed [x, y, z]."""
    axes = [OCC_RANGE[i] + OCC_VOXEL * (np.arange(n) + 0.5) for i, n in enumerate(OCC_SHAPE)]
    return np.stack(np.meshgrid(*axes, indexing='ij'), -1)


def occupancy_labels(layout: RoadLayout, boxes: List[dict], ego2global: np.ndarray,
                     lidar_points_global: np.ndarray, lidar_origin: np.ndarray,
                     cameras: Sequence[Tuple[np.ndarray, np.ndarray, Tuple[int, int]]]) -> dict:
    """Compute ``semantics``, ``mask_lidar`` and ``mask_camera`` (each uint8 (200, 200, 16)).

    Args:
        boxes: global boxes with ``occ_label``.
        ego2global: (4, 4) at the key frame's lidar timestamp.
        lidar_points_global: (N, 3) key-frame lidar returns in the global frame.
        lidar_origin: (3,) global position of the lidar.
        cameras: per camera (cam2global (4, 4), intrinsic (3, 3), (width, height)).
    """
    centers = voxel_centers_ego().reshape(-1, 3)
    glob = centers @ ego2global[:3, :3].T + ego2global[:3, 3]
    sem = np.full(len(centers), OCC_FREE, dtype=np.uint8)
    ground = np.abs(centers[:, 2]) < OCC_VOXEL / 2
    sem[ground] = GROUND_OCC[layout.ground_class(glob[ground, :2])]
    sem = sem.reshape(OCC_SHAPE)
    glob = glob.reshape(OCC_SHAPE + (3,))
    global2ego = np.linalg.inv(ego2global)
    for b in boxes:
        block = _box_block(b, global2ego)
        if block is None:
            continue
        sub = glob[block]
        inside = points_in_box(sub.reshape(-1, 3), _grown(b)).reshape(sub.shape[:3])
        sem[block][inside] = b['occ_label']
    return dict(semantics=sem,
                mask_lidar=_lidar_mask(lidar_points_global, lidar_origin, ego2global),
                mask_camera=_camera_mask(glob.reshape(-1, 3), cameras, boxes).reshape(OCC_SHAPE))


def _box_block(box: dict, global2ego: np.ndarray):
    """Slices of the voxel grid that a box can touch, or None when it is outside the grid."""
    c = global2ego[:3, :3] @ box['center'] + global2ego[:3, 3]
    w, l, h = box['wlh']
    r = math.hypot(w, l) / 2 + OCC_VOXEL
    lo = np.floor((c - [r, r, h / 2 + OCC_VOXEL] - np.array(OCC_RANGE[:3])) / OCC_VOXEL).astype(int)
    hi = np.ceil((c + [r, r, h / 2 + OCC_VOXEL] - np.array(OCC_RANGE[:3])) / OCC_VOXEL).astype(int)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, OCC_SHAPE)
    if np.any(hi <= lo):
        return None
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _grown(box: dict) -> dict:
    """A box grown by half a voxel so that thin objects still own the voxels they touch."""
    w, l, h = box['wlh']
    g = OCC_VOXEL / 2
    return dict(box, wlh=(w + g, l + g, h + g))


def _to_index(pts_ego: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    idx = np.floor((pts_ego - np.array(OCC_RANGE[:3])) / OCC_VOXEL).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.array(OCC_SHAPE)), axis=1)
    return idx, ok


def _lidar_mask(points_global, origin_global, ego2global) -> np.ndarray:
    mask = np.zeros(OCC_SHAPE, dtype=np.uint8)
    global2ego = np.linalg.inv(ego2global)
    pts = points_global @ global2ego[:3, :3].T + global2ego[:3, 3]
    o = global2ego[:3, :3] @ origin_global + global2ego[:3, 3]
    # free space along every 3rd ray, sampled each half voxel up to 0.3 m before the return
    sub = pts[::3]
    dist = np.linalg.norm(sub - o, axis=1)
    steps = np.arange(0.0, dist.max() if len(dist) else 0.0, OCC_VOXEL / 2)
    for s in steps:
        live = dist - 0.3 > s
        if not live.any():
            break
        p = o + (sub[live] - o) * (s / dist[live])[:, None]
        idx, ok = _to_index(p)
        mask[tuple(idx[ok].T)] = 1
    idx, ok = _to_index(pts)
    mask[tuple(idx[ok].T)] = 1
    return mask


def _depth_buffer(cam2global, intrinsic, size, boxes, stride: int = 8) -> np.ndarray:
    """Z-depth (m) of the first surface per block of ``stride``² pixels, (H/stride, W/stride)."""
    w, h = size
    us, vs = np.meshgrid(np.arange(0, w, stride) + stride / 2, np.arange(0, h, stride) + stride / 2)
    pix = np.stack([us, vs, np.ones_like(us)], -1).reshape(-1, 3)
    d = pix @ (cam2global[:3, :3] @ np.linalg.inv(intrinsic)).T  # camera z-component is 1
    o = cam2global[:3, 3]
    depth = np.full(len(d), np.inf)
    down = d[:, 2] < -1e-9
    depth[down] = -o[2] / d[down, 2]
    for b in boxes:
        if np.linalg.norm(b['center'][:2] - o[:2]) < 90:
            depth = np.minimum(depth, ray_box_distance(o, d, b))
    return depth.reshape(us.shape)


def _camera_mask(glob: np.ndarray, cameras, boxes) -> np.ndarray:
    seen = np.zeros(len(glob), dtype=bool)
    stride = 8
    for cam2global, intrinsic, (w, h) in cameras:
        zbuf = _depth_buffer(cam2global, intrinsic, (w, h), boxes, stride)
        g2c = np.linalg.inv(cam2global)
        cam = glob @ g2c[:3, :3].T + g2c[:3, 3]
        front = np.nonzero(cam[:, 2] > 0.1)[0]
        uvw = cam[front] @ intrinsic.T
        uv = uvw[:, :2] / uvw[:, 2:3]
        ok = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        idx, uv = front[ok], uv[ok]
        col = np.minimum((uv[:, 0] / stride).astype(int), zbuf.shape[1] - 1)
        row = np.minimum((uv[:, 1] / stride).astype(int), zbuf.shape[0] - 1)
        visible = cam[idx, 2] <= zbuf[row, col] + OCC_VOXEL / 2
        seen[idx[visible]] = True
    return seen.astype(np.uint8)
