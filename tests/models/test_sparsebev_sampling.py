"""SparseBEV sampling: msmv_sampling vs a per-point bilinear loop, first-valid-view choice,
box-relative sampling points, and temporal warping by ego motion and query velocity."""
import math

import numpy as np
import torch

from sparsebev_testutils import camera_pose, intrinsics, ring_lidar2img

from ptqat.models.sparsebev import (decode_bbox, encode_bbox, make_sample_points,
                                    msmv_sampling, project_points, sampling_4d,
                                    warp_by_velocity)

PC = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


def bilinear_align_corners(img, u, v):
    """Sample ``img (C, H, W)`` at normalised ``u, v`` with pixel ``u·(W-1)``, ``v·(H-1)``
    (the CUDA kernel's convention), zeros outside: a plain loop."""
    C, H, W = img.shape
    x, y = float(u) * (W - 1), float(v) * (H - 1)
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(C, dtype=img.dtype)
    for yi in (y0, y0 + 1):
        for xi in (x0, x0 + 1):
            w = (1 - abs(x - xi)) * (1 - abs(y - yi))
            if 0 <= xi < W and 0 <= yi < H:
                out += w * img[:, yi, xi]
    return out


def test_msmv_sampling_matches_bilinear_loop():
    g = torch.Generator().manual_seed(0)
    M, C, N, Q, P = 3, 5, 6, 4, 7
    sizes = [(9, 13), (5, 7)]
    feats = [torch.randn(M, C, N, h, w, generator=g, dtype=torch.float64) for h, w in sizes]
    uv = torch.rand(M, Q, P, 2, generator=g, dtype=torch.float64) * 1.2 - 0.1  # some outside
    view = torch.randint(0, N, (M, Q, P, 1), generator=g).double()
    loc = torch.cat([uv, view / (N - 1)], -1)
    sw = torch.rand(M, Q, P, len(sizes), generator=g, dtype=torch.float64)
    out = msmv_sampling(feats, loc, sw)
    assert out.shape == (M, Q, C, P)
    for m in range(M):
        for q in range(Q):
            for p in range(P):
                n = int(view[m, q, p, 0])
                ref = sum(sw[m, q, p, lvl] * bilinear_align_corners(
                    feats[lvl][m, :, n], uv[m, q, p, 0], uv[m, q, p, 1])
                    for lvl in range(len(sizes)))
                torch.testing.assert_close(out[m, q, :, p], ref)


def test_sampling_4d_uses_first_valid_view_and_layouts():
    """A point straight ahead of camera 1 (yaw 60°) is sampled in view 1 at its pixel; the
    output layout is (B, Q, G, T·P, C/G)."""
    B, Q, T, G, P, N, C, hw = 1, 1, 2, 2, 1, 6, 3, (8, 16)
    l2i = torch.from_numpy(np.concatenate([ring_lidar2img(N, hw)] * T)).float()[None]
    ang = 2 * math.pi / 6
    pts = torch.tensor([10 * math.cos(ang), 10 * math.sin(ang), 0.0]).expand(B, Q, T, G, P, 3)
    uv, valid = project_points(pts.reshape(B, Q, T, G * P, 3), l2i, hw)
    assert valid[0, 0, :, 0, 0].tolist() == [False, True, False, False, False, False]
    torch.testing.assert_close(uv[0, 0, 1, 0, 0], torch.tensor([0.5, 0.5]))
    # features: channel value = 100·frame + 10·group + view, constant over the image
    feat = torch.zeros(B * T * G, C, N, *hw)
    for t in range(T):
        for g in range(G):
            for n in range(N):
                feat[t * G + g, :, n] = 100 * t + 10 * g + n
    sw = torch.ones(B, Q, G, T, P, 1)
    out = sampling_4d(pts, [feat], sw, l2i, hw)
    assert out.shape == (B, Q, G, T * P, C)
    for g in range(G):
        for t in range(T):
            assert torch.allclose(out[0, 0, g, t], torch.tensor(100. * t + 10 * g + 1))


def test_encode_decode_roundtrip():
    boxes = torch.tensor([[3.0, -4.0, 0.5, 4.2, 1.9, 1.6, 2.5, 1.0, -0.5]])
    code = encode_bbox(boxes, PC)
    assert 0 < code[0, 0] < 1 and code.shape == (1, 10)
    torch.testing.assert_close(decode_bbox(code, PC), boxes)


def test_sample_points_follow_box_size_and_yaw():
    box = torch.tensor([[10.0, 5.0, 0.0, 4.0, 2.0, 1.0, math.pi / 2, 0.0, 0.0]])
    code = encode_bbox(box, PC)[None]  # (1, 1, 10)
    offset = torch.tensor([0.5, 0.0, 0.5]).view(1, 1, 1, 3)  # half a length ahead, top
    pts = make_sample_points(code, offset, PC)
    # x_size 4 along the yaw direction (+y after 90°), z_size 1
    torch.testing.assert_close(pts[0, 0, 0], torch.tensor([10.0, 7.0, 0.5]), atol=1e-4,
                               rtol=0)


def test_temporal_warp_lands_on_the_same_world_point():
    """An object moving at v (current LiDAR frame) and an ego that moved and turned between
    a past frame and the key frame: the warped sampling point, projected with the past
    frame's lidar2img (current LiDAR -> past camera), hits the pixel of the object's
    world position at the past time seen by the past camera."""
    hw, dt = (90, 160), 0.5
    yaw_key = 0.3
    lidar2global_key = np.eye(4)
    lidar2global_key[:3, :3] = [[math.cos(yaw_key), -math.sin(yaw_key), 0],
                                [math.sin(yaw_key), math.cos(yaw_key), 0], [0, 0, 1]]
    lidar2global_key[:3, 3] = [100.0, 50.0, 1.8]
    # the past camera: the ego was 4 m behind and turned 0.1 rad less; camera looks forward
    ego_past = np.eye(4)
    yp = yaw_key - 0.1
    ego_past[:3, :3] = [[math.cos(yp), -math.sin(yp), 0], [math.sin(yp), math.cos(yp), 0],
                        [0, 0, 1]]
    ego_past[:3, 3] = lidar2global_key[:3, 3] - 4.0 * np.array([math.cos(yp), math.sin(yp), 0])
    cam2global_past = ego_past @ camera_pose([1.5, 0.0, 0.0], 0.0)
    l2i_past = intrinsics(hw) @ np.linalg.inv(cam2global_past) @ lidar2global_key
    l2i_key = intrinsics(hw) @ np.linalg.inv(lidar2global_key @ camera_pose([1.5, 0, 0], 0)) \
        @ lidar2global_key
    centre, vel = np.array([20.0, 3.0, 0.0]), np.array([4.0, -2.0])
    box = torch.tensor([[*centre, 4.0, 2.0, 1.5, 0.0, *vel]], dtype=torch.float64)
    code = encode_bbox(box, PC)[None]
    pts = make_sample_points(code, torch.zeros(1, 1, 1, 3, dtype=torch.float64), PC)
    warped = warp_by_velocity(pts, code[..., 8:10], torch.tensor([[0.0, dt]],
                                                                 dtype=torch.float64))
    l2i = torch.from_numpy(np.stack([l2i_key, l2i_past]))[None]
    uv, valid = project_points(warped[:, :, :, None, 0], l2i, hw)  # T=2 frames, N=1 view
    assert valid.all()
    world_past = lidar2global_key @ np.r_[centre[:2] - vel * dt, centre[2], 1.0]
    cam = intrinsics(hw) @ np.linalg.inv(cam2global_past) @ world_past
    expect = cam[:2] / cam[2] / np.array([hw[1], hw[0]])
    np.testing.assert_allclose(uv[0, 1, 0, 0, 0].numpy(), expect, atol=1e-9)
    # and without the warp it would miss by more than a pixel
    uv0, _ = project_points(pts[:, :, None].expand(-1, -1, 2, -1, -1), l2i, hw)
    assert np.abs((uv0[0, 1, 0, 0, 0].numpy() - expect) * [hw[1], hw[0]]).max() > 1.0
