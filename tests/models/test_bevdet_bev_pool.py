"""Pure-PyTorch bev_pool: parity with a brute-force loop, gradients, ranks."""
import itertools

import pytest
import torch

from ptqat.models.bevdet.bev_pool import bev_pool, voxel_pooling_prepare


def brute_force_pool(coor, depth, feat, lower, interval, size):
    """Loop over every frustum point: the definition of bev_pool_v2."""
    B, N, D, H, W, _ = coor.shape
    C = feat.shape[-1]
    gx, gy, gz = size
    out = torch.zeros(B, C, gz, gy, gx, dtype=feat.dtype)
    for b, n, d, h, w in itertools.product(
            range(B), range(N), range(D), range(H), range(W)):
        idx = [int((coor[b, n, d, h, w, k] - lower[k]) / interval[k])
               for k in range(3)]  # int() truncates towards zero
        if not (0 <= idx[0] < gx and 0 <= idx[1] < gy and 0 <= idx[2] < gz):
            continue
        out[b, :, idx[2], idx[1], idx[0]] += depth[b, n, d, h, w] * feat[b, n,
                                                                         h, w]
    return out


def random_case(seed, dtype=torch.float32, B=2, N=2, D=3, H=2, W=3, C=4):
    g = torch.Generator().manual_seed(seed)
    # coordinates spread beyond the grid [-2, 2) x [-2, 2) x [-1, 1)
    coor = torch.rand(B, N, D, H, W, 3, generator=g, dtype=dtype) * 6 - 3
    coor[..., 2] = coor[..., 2] * 0.5
    depth = torch.rand(B, N, D, H, W, generator=g, dtype=dtype)
    feat = torch.randn(B, N, H, W, C, generator=g, dtype=dtype)
    lower = torch.tensor([-2.0, -2.0, -1.0], dtype=dtype)
    interval = torch.tensor([0.5, 1.0, 1.0], dtype=dtype)
    size = (8, 4, 2)
    return coor, depth, feat, lower, interval, size


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_brute_force(seed):
    coor, depth, feat, lower, interval, size = random_case(seed)
    ranks_bev, ranks_depth, ranks_feat = voxel_pooling_prepare(
        coor, lower, interval, size)
    B, C = depth.shape[0], feat.shape[-1]
    out = bev_pool(depth, feat, ranks_depth, ranks_feat, ranks_bev,
                   (B, size[2], size[1], size[0], C))
    ref = brute_force_pool(coor, depth, feat, lower, interval, size)
    assert out.shape == (B, C, size[2], size[1], size[0])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # some points were really dropped, some kept
    assert 0 < ranks_bev.numel() < depth.numel()


def test_rank_layout_and_dropping():
    """Hand-placed points: rank formula, truncation and dropping."""
    lower = torch.tensor([-2.0, -2.0, -1.0])
    interval = torch.tensor([1.0, 1.0, 2.0])
    size = (4, 4, 1)
    pts = torch.tensor([
        [0.5, -1.5, 0.0],  # -> x=2, y=0, z=0
        [1.99, 1.99, 0.9],  # -> x=3, y=3, z=0 (upper corner cell)
        [2.0, 0.0, 0.0],  # x == upper bound -> dropped
        [0.0, 0.0, 1.5],  # z beyond range -> dropped
        [-3.5, 0.0, 0.0],  # more than one cell below -> dropped
        [-2.5, 0.0, 0.0],  # (−0.5).long() == 0: kept in x=0 (upstream)
    ]).view(1, 1, 6, 1, 1, 3)
    ranks_bev, ranks_depth, ranks_feat = voxel_pooling_prepare(
        pts, lower, interval, size)
    assert ranks_depth.tolist() == [0, 1, 5]
    assert ranks_feat.tolist() == [0, 0, 0]
    # ranks_bev = b*Z*Y*X + z*Y*X + y*X + x
    assert ranks_bev.tolist() == [0 * 4 + 2, 3 * 4 + 3, 2 * 4 + 0]

    # second batch element is offset by Z*Y*X
    pts2 = torch.cat([pts, pts], 0)
    ranks_bev2, _, _ = voxel_pooling_prepare(pts2, lower, interval, size)
    assert ranks_bev2.tolist() == [2, 15, 8, 18, 31, 24]


def test_all_points_outside():
    coor = torch.full((1, 1, 2, 2, 2, 3), 100.0)
    lower, interval = torch.zeros(3), torch.ones(3)
    ranks = voxel_pooling_prepare(coor, lower, interval, (4, 4, 1))
    assert all(r.numel() == 0 for r in ranks)
    depth = torch.rand(1, 1, 2, 2, 2, requires_grad=True)
    feat = torch.rand(1, 1, 2, 2, 3, requires_grad=True)
    out = bev_pool(depth, feat, ranks[1], ranks[2], ranks[0], (1, 1, 4, 4, 3))
    assert out.shape == (1, 3, 1, 4, 4) and out.abs().sum() == 0
    out.sum().backward()  # still differentiable


def test_gradcheck():
    coor, depth, feat, lower, interval, size = random_case(
        3, dtype=torch.float64, B=1, N=2, D=2, H=2, W=2, C=3)
    ranks_bev, ranks_depth, ranks_feat = voxel_pooling_prepare(
        coor, lower, interval, size)
    assert ranks_bev.numel() > 0
    depth.requires_grad_(True)
    feat.requires_grad_(True)

    def fn(d, f):
        return bev_pool(d, f, ranks_depth, ranks_feat, ranks_bev,
                        (1, size[2], size[1], size[0], f.shape[-1]))

    assert torch.autograd.gradcheck(fn, (depth, feat), eps=1e-6, atol=1e-6)


def test_duplicate_cells_accumulate():
    # all frustum points in the same cell -> sum of depth * feat
    coor = torch.zeros(1, 1, 3, 1, 2, 3)
    depth = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3, 1, 1).expand(
        1, 1, 3, 1, 2).contiguous()
    feat = torch.tensor([[1.0], [10.0]]).view(1, 1, 1, 2, 1)
    ranks = voxel_pooling_prepare(coor, torch.tensor([-1.0, -1, -1]),
                                  torch.tensor([2.0, 2, 2]), (1, 1, 1))
    out = bev_pool(depth, feat, ranks[1], ranks[2], ranks[0], (1, 1, 1, 1, 1))
    assert out.item() == pytest.approx(6.0 * 1 + 6.0 * 10)
