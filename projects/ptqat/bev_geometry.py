"""BEV grid geometry shared by the data transforms and the models (neither imports the other).

Conventions:

* A grid axis is ``bound = (min, max, step)`` in metres; cell ``i`` has its centre at
  ``min + step * (i + 0.5)``; ``n = round((max - min) / step)`` cells.
* BEV rasters (map masks, BEV features) are ``[..., y, x]``: rows follow the ego/BEV **y** axis
  (left), columns the **x** axis (forward), both ascending (row 0 is the rightmost row).
* Occ3D volumes are ``[x, y, z]``.
* ``bda`` is BEVDet's BEV augmentation (``p_bev = bda @ p_keyego``; 3x3 or 4x4, the 2D part is
  ``bda[:2, :2]`` and the translation ``bda[:2, 3]``).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: the Occ3D-nuScenes grid: [x, y, z] bounds (m) and shape
OCC3D_BOUNDS = ((-40.0, 40.0, 0.4), (-40.0, 40.0, 0.4), (-1.0, 5.4, 0.4))
OCC3D_SHAPE = (200, 200, 16)
#: BEVFusion's map segmentation grid (x and y bounds)
MAP_SEG_BOUND = (-50.0, 50.0, 0.5)


def grid_size(bound: Sequence[float]) -> int:
    """Number of cells of ``bound = (min, max, step)``; ValueError if not a whole number."""
    lo, hi, step = (float(b) for b in bound)
    n = (hi - lo) / step
    if step <= 0 or hi <= lo or abs(n - round(n)) > 1e-6:
        raise ValueError(f'grid bound {tuple(bound)} must be (min, max, step) with max > min, '
                         'step > 0 and a whole number of cells')
    return int(round(n))


def grid_centers(bound: Sequence[float]) -> np.ndarray:
    """Cell centres (float64, ``(n,)``) of ``bound = (min, max, step)``."""
    return float(bound[0]) + float(bound[2]) * (np.arange(grid_size(bound)) + 0.5)


def bda_flips(bda, atol: float = 1e-6) -> Tuple[bool, bool]:
    """``(flip_dx, flip_dy)`` of a BEV augmentation that is a pure flip (or the identity).

    Raises:
        ValueError: ``bda`` rotates, scales or translates (Occ3D labels and predictions can
            follow flips only; set ``rot_lim=(0, 0)``, ``scale_lim=(1, 1)``, no ``tran_lim``).
    """
    m = np.asarray(bda, dtype=np.float64)
    a = m[:2, :2]
    t = m[:2, 3] if m.shape[-1] == 4 else np.zeros(2)
    diag = np.diag(a)
    if (np.abs(a - np.diag(diag)).max() > atol or np.abs(np.abs(diag) - 1).max() > atol
            or np.abs(t).max() > atol):
        raise ValueError('this ground truth follows BEV flips only, but the BEV augmentation is '
                         f'{np.round(m, 4).tolist()}: use rot_lim=(0, 0), scale_lim=(1, 1) and '
                         'no tran_lim in bda_aug_conf')
    return bool(diag[0] < 0), bool(diag[1] < 0)


def flip_occupancy(volume: np.ndarray, flip_dx: bool, flip_dy: bool) -> np.ndarray:
    """Flip an ``[x, y, ...]`` volume: ``flip_dx`` mirrors x (dim 0), ``flip_dy`` y (dim 1)."""
    if flip_dx:
        volume = volume[::-1]
    if flip_dy:
        volume = volume[:, ::-1]
    return np.ascontiguousarray(volume)


def resample_bev_nearest(raster: np.ndarray, bda, xbound: Sequence[float],
                         ybound: Sequence[float]) -> np.ndarray:
    """Move a ``(..., Y, X)`` raster from the key-ego frame into the BEV frame ``bda @ key ego``.

    Nearest neighbour: BEV cell centre ``p`` takes the key-ego cell holding
    ``inv(A) @ (p - t)``; cells that fall outside the source grid get 0. Flips of a grid that is
    symmetric about the ego are exact (pure index reversal).

    Args:
        raster: ``(..., ny, nx)`` array in the ``[y, x]`` layout of ``xbound``/``ybound``.
        bda: 3x3 or 4x4 BEV augmentation.
    """
    m = np.asarray(bda, dtype=np.float64)
    a, t = m[:2, :2], (m[:2, 3] if m.shape[-1] == 4 else np.zeros(2))
    if np.allclose(a, np.eye(2)) and np.allclose(t, 0):
        return raster
    xs, ys = grid_centers(xbound), grid_centers(ybound)
    if raster.shape[-2:] != (len(ys), len(xs)):
        raise ValueError(f'raster {raster.shape} does not match the grid ({len(ys)}, {len(xs)})')
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx): [y, x]
    src = np.linalg.solve(a, np.stack([gx.ravel() - t[0], gy.ravel() - t[1]]))
    ix = np.floor((src[0] - xbound[0]) / xbound[2] + 1e-9).astype(np.int64)
    iy = np.floor((src[1] - ybound[0]) / ybound[2] + 1e-9).astype(np.int64)
    ok = (ix >= 0) & (ix < len(xs)) & (iy >= 0) & (iy < len(ys))
    flat = raster.reshape(*raster.shape[:-2], -1)
    out = np.zeros_like(flat)
    out[..., ok] = flat[..., iy[ok] * len(xs) + ix[ok]]
    return out.reshape(raster.shape)
