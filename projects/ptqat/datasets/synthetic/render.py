"""Camera images of the synthetic world.

The ground is rendered by inverse perspective (each pixel's ray meets the plane z = 0 and takes
the layout's ground colour), then every box is drawn back to front (painter's algorithm) with
per-face shading. A box's front face (+l) is tinted light and its back dark, so that headings
are visible to a camera model.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .geometry import BOX_FACES, box_corners, transform_points
from .layout import GROUND_COLORS, RoadLayout

NEAR_PLANE = 0.1  # m
MAX_DRAW_DISTANCE = 150.0  # m
HAZE = np.array([190, 200, 210], dtype=np.float32)
LIGHT = np.array([0.35, 0.25, 0.9]) / np.linalg.norm([0.35, 0.25, 0.9])


def render_camera(layout: RoadLayout, boxes: List[dict], cam2global: np.ndarray,
                  intrinsic: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Render one camera image.

    Args:
        boxes: global boxes (``center`` (3,), ``wlh``, ``yaw``, ``color``), see ``SceneWorld``.
        cam2global: (4, 4) camera (OpenCV axes) → global transform.
        intrinsic: (3, 3) camera matrix for an image of ``size``.
        size: (width, height) in pixels.
    Returns:
        (height, width, 3) uint8 RGB image.
    """
    # The smooth ground is rendered at half resolution (4x cheaper) and upsampled; the boxes
    # are drawn at full resolution on top.
    half = (max(1, size[0] // 2), max(1, size[1] // 2))
    k_half = np.diag([half[0] / size[0], half[1] / size[1], 1.0]) @ intrinsic
    ground = Image.fromarray(_render_ground(layout, cam2global, k_half, half))
    img = ground.resize(size, Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    global2cam = np.linalg.inv(cam2global)
    origin = cam2global[:3, 3]
    dists = [np.linalg.norm(b['center'][:2] - origin[:2]) for b in boxes]
    for i in np.argsort(dists)[::-1]:
        if dists[i] < MAX_DRAW_DISTANCE:
            _draw_box(draw, boxes[i], global2cam, intrinsic, origin)
    return np.asarray(img)


def _render_ground(layout, cam2global, intrinsic, size) -> np.ndarray:
    w, h = size
    us, vs = np.meshgrid(np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5)
    pix = np.stack([us, vs, np.ones_like(us)], -1).reshape(-1, 3)
    rays = pix @ (cam2global[:3, :3] @ np.linalg.inv(intrinsic)).T.astype(np.float32)
    o = cam2global[:3, 3].astype(np.float32)
    dz = rays[:, 2]
    ground = dz < -1e-4
    t = np.where(ground, -o[2] / np.where(ground, dz, -1.0), 0.0)
    pts = o[None, :2] + t[:, None] * rays[:, :2]
    dist = np.hypot(pts[:, 0] - o[0], pts[:, 1] - o[1])
    ground &= dist < 400
    out = np.empty((pix.shape[0], 3), dtype=np.float32)
    # sky: brighter towards the horizon
    elev = dz / np.linalg.norm(rays, axis=1)
    sky = np.clip(elev, 0, 1)[:, None]
    out[:] = (1 - sky) * np.array([175, 200, 230], np.float32) + sky * np.array([70, 120, 200], np.float32)
    g = np.nonzero(ground)[0]
    col = GROUND_COLORS[layout.ground_class(pts[g].astype(np.float64))].astype(np.float32)
    # a fine checker texture gives the ground a visible scale
    checker = ((np.floor(pts[g, 0] * 2) + np.floor(pts[g, 1] * 2)) % 2)[:, None]
    col = col * (0.94 + 0.06 * checker)
    fog = np.clip(dist[g] / 250.0, 0, 1)[:, None]
    out[g] = (1 - fog) * col + fog * HAZE
    return out.reshape(h, w, 3).clip(0, 255).astype(np.uint8)


def _draw_box(draw: ImageDraw.ImageDraw, box: dict, global2cam, intrinsic, origin) -> None:
    corners = box_corners(box['center'], box['wlh'], box['yaw'])
    cam = transform_points(global2cam, corners)
    if np.all(cam[:, 2] < NEAR_PLANE):
        return
    base = np.asarray(box['color'], dtype=np.float64)
    center = corners.mean(0)
    for fi, face in enumerate(BOX_FACES):
        pts_g = corners[list(face)]
        normal = pts_g.mean(0) - center
        normal /= np.linalg.norm(normal)
        if np.dot(normal, pts_g.mean(0) - origin) >= 0:
            continue  # back-facing
        poly = _clip_near(cam[list(face)])
        if len(poly) < 3:
            continue
        uv = poly @ intrinsic.T
        uv = uv[:, :2] / uv[:, 2:3]
        if np.abs(uv).max() > 1e5:
            continue
        color = base
        if fi == 2:      # front (+l)
            color = 0.6 * base + 0.4 * 255
        elif fi == 3:    # back (-l)
            color = 0.55 * base
        shade = 0.45 + 0.55 * max(0.0, float(np.dot(normal, LIGHT)))
        draw.polygon([tuple(p) for p in uv], fill=tuple(int(c) for c in np.clip(color * shade, 0, 255)))


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Clip a camera-frame polygon (K, 3) to z >= NEAR_PLANE (Sutherland-Hodgman, one plane)."""
    out: List[np.ndarray] = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        ina, inb = a[2] >= NEAR_PLANE, b[2] >= NEAR_PLANE
        if ina:
            out.append(a)
        if ina != inb:
            s = (NEAR_PLANE - a[2]) / (b[2] - a[2])
            out.append(a + s * (b - a))
    return np.array(out)


def save_jpeg(img: np.ndarray, path: str, quality: int = 90) -> None:
    Image.fromarray(img).save(path, quality=quality)


def scaled_intrinsic(focal: float, cx: float, cy: float, scale: float) -> np.ndarray:
    """(3, 3) camera matrix of a nuScenes camera resized by ``scale``."""
    return np.array([[focal * scale, 0, cx * scale], [0, focal * scale, cy * scale], [0, 0, 1.0]])


def project_points(points_global: np.ndarray, cam2global: np.ndarray,
                   intrinsic: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Project global points (N, 3) → pixel (N, 2) and depth (N,) in metres."""
    cam = transform_points(np.linalg.inv(cam2global), np.asarray(points_global, dtype=np.float64))
    uvw = cam @ intrinsic.T
    return uvw[:, :2] / uvw[:, 2:3], cam[:, 2]


