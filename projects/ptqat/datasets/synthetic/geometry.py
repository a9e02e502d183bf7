"""Small rigid-transform helpers (numpy). Quaternions are (w, x, y, z) as in nuScenes."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def yaw_quaternion(yaw: float) -> list:
    """Quaternion (w, x, y, z) of a rotation by ``yaw`` radians about +z."""
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """(w, x, y, z) unit quaternion → (3, 3) rotation matrix."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(r: np.ndarray) -> list:
    """(3, 3) rotation matrix → (w, x, y, z) unit quaternion with w >= 0."""
    m = np.asarray(r, dtype=np.float64)
    t = np.trace(m)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k]) * 2
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[i + 1] = 0.25 * s
        q[j + 1] = (m[j, i] + m[i, j]) / s
        q[k + 1] = (m[k, i] + m[i, k]) / s
    q = np.array(q)
    q = q / np.linalg.norm(q)
    return (q if q[0] >= 0 else -q).tolist()


def make_transform(rotation: np.ndarray, translation: Sequence[float]) -> np.ndarray:
    """(3, 3) rotation and (3,) translation → (4, 4) homogeneous transform."""
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


def camera_rotation(yaw: float) -> np.ndarray:
    """Rotation camera → ego for a camera looking horizontally at ``yaw`` radians.

    Camera axes (OpenCV): x right, y down, z forward. Ego axes: x forward, y left, z up.
    """
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[s, 0.0, c],
                     [-c, 0.0, s],
                     [0.0, -1.0, 0.0]])


def transform_points(t: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (N, 3) points."""
    return pts @ t[:3, :3].T + t[:3, 3]


def box_corners(center: Sequence[float], wlh: Sequence[float], yaw: float) -> np.ndarray:
    """The 8 corners (8, 3) of a box with geometric ``center``, size (w, l, h) and heading ``yaw``.

    Corner order: bottom face (0..3) then top face (4..7), counter-clockwise from (+l/2, +w/2).
    """
    w, l, h = wlh
    x = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * l / 2
    y = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * w / 2
    z = np.array([-1, -1, -1, -1, 1, 1, 1, 1]) * h / 2
    c, s = math.cos(yaw), math.sin(yaw)
    pts = np.stack([c * x - s * y, s * x + c * y, z], axis=1)
    return pts + np.asarray(center, dtype=np.float64)


# The 6 faces of ``box_corners`` as corner indices, outward normals by right-hand order.
BOX_FACES = ((0, 1, 2, 3), (4, 7, 6, 5), (0, 3, 7, 4), (1, 5, 6, 2), (0, 4, 5, 1), (3, 2, 6, 7))
