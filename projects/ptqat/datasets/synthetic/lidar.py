"""A spinning 32-beam lidar (HDL-32E-like) ray-cast against the ground plane and the boxes."""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from .constants import LIDAR_ELEVATIONS_DEG, LIDAR_MAX_RANGE

GROUND_INTENSITY = 12.0


def lidar_rays(n_azimuth: int) -> Tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (32·n_azimuth, 3) in the sensor frame and their beam (ring) index."""
    el = np.radians(np.asarray(LIDAR_ELEVATIONS_DEG))
    az = np.linspace(-math.pi, math.pi, n_azimuth, endpoint=False)
    e, a = np.meshgrid(el, az, indexing='ij')
    dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    ring = np.repeat(np.arange(len(el)), n_azimuth)
    return dirs, ring


def cast(boxes: List[dict], lidar2global: np.ndarray, n_azimuth: int,
         rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Cast one sweep.

    Args:
        boxes: global boxes (``center``, ``wlh``, ``yaw``, optional ``agent``).
        lidar2global: (4, 4) sensor → global transform at the sweep time.
    Returns:
        points: (N, 5) float32 ``x, y, z, intensity, ring`` in the sensor frame.
        hit: (N,) index into ``boxes`` of the box each point lies on, -1 for the ground.
    """
    dirs_s, ring = lidar_rays(n_azimuth)
    rot = lidar2global[:3, :3]
    o = lidar2global[:3, 3]
    d = dirs_s @ rot.T
    best = np.full(len(d), np.inf)
    hit = np.full(len(d), -1, dtype=np.int64)
    down = d[:, 2] < -1e-6
    best[down] = -o[2] / d[down, 2]
    for i, b in enumerate(boxes):
        if np.linalg.norm(b['center'][:2] - o[:2]) > LIDAR_MAX_RANGE + 15:
            continue
        t = ray_box_distance(o, d, b)
        closer = t < best
        best[closer] = t[closer]
        hit[closer] = i
    keep = best < LIDAR_MAX_RANGE
    rng_m = best[keep] + np.where(hit[keep] >= 0, 0.02, 0.0)  # box hits: 2 cm inside the surface
    rng_m = rng_m + rng.normal(0, 0.005, rng_m.shape)
    pts_s = dirs_s[keep] * rng_m[:, None]
    intensity = np.where(hit[keep] >= 0, 40.0 + 7.0 * (hit[keep] % 13), GROUND_INTENSITY)
    points = np.concatenate([pts_s, intensity[:, None], ring[keep, None]], 1).astype(np.float32)
    return points, hit[keep]


def ray_box_distance(o: np.ndarray, d: np.ndarray, box: dict) -> np.ndarray:
    """Entry distance (N,) of rays ``o + t·d`` into an oriented box (inf where they miss)."""
    c, s = math.cos(box['yaw']), math.sin(box['yaw'])
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])  # global → box
    ol = rot @ (o - box['center'])
    dl = d @ rot.T
    w, l, h = box['wlh']
    half = np.array([l / 2, w / 2, h / 2])
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = (-half - ol) / dl
        t2 = (half - ol) / dl
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    ok = (tmax >= tmin) & (tmin > 0)
    return np.where(ok, tmin, np.inf)


def points_in_box(points_global: np.ndarray, box: dict) -> np.ndarray:
    """Boolean mask (N,) of global points (N, 3) inside a box (boundary inclusive, like the devkit)."""
    c, s = math.cos(box['yaw']), math.sin(box['yaw'])
    rel = points_global - box['center']
    x = c * rel[:, 0] + s * rel[:, 1]
    y = -s * rel[:, 0] + c * rel[:, 1]
    w, l, h = box['wlh']
    return (np.abs(x) <= l / 2) & (np.abs(y) <= w / 2) & (np.abs(rel[:, 2]) <= h / 2)
