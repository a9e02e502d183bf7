"""scatter_bev_pool (Gather/Mul/ScatterElements-add) = bev_pool, also through ONNX."""
import numpy as np
import pytest
import torch

from ptqat.deploy.pooling import scatter_bev_pool
from ptqat.models.bevdet.bev_pool import bev_pool, voxel_pooling_prepare


def _case(seed=0, n=2, d=5, h=3, w=4, c=6, grid=(7, 6, 2)):
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(1, n, d, h, w, generator=g).softmax(2)
    feat = torch.randn(1, n, c, h, w, generator=g)
    coor = torch.rand(1, n, d, h, w, 3, generator=g) * torch.tensor([8.0, 7.0, 2.5]) - 0.5
    ranks_bev, ranks_depth, ranks_feat = voxel_pooling_prepare(
        coor, torch.zeros(3), torch.ones(3), grid)
    return depth, feat, ranks_depth, ranks_feat, ranks_bev, grid


def _reference(depth, feat, rd, rf, rb, grid):
    gx, gy, gz = grid
    bev = bev_pool(depth, feat.permute(0, 1, 3, 4, 2), rd, rf, rb, (1, gz, gy, gx, feat.shape[2]))
    return torch.cat(bev.unbind(dim=2), dim=1)   # collapse_z as LSSViewTransformer.splat


def test_scatter_pool_equals_bev_pool():
    depth, feat, rd, rf, rb, grid = _case()
    assert 0 < rb.numel() < depth.numel()   # some points outside the grid are dropped
    ref = _reference(depth, feat, rd, rf, rb, grid)
    out = scatter_bev_pool(depth, feat, rd, rf, rb, grid)
    assert out.shape == ref.shape == (1, 6 * 2, 6, 7)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


def test_scatter_pool_onnx(tmp_path):
    ort = pytest.importorskip('onnxruntime')

    class Pool(torch.nn.Module):
        def forward(self, depth, feat, rd, rf, rb):
            return scatter_bev_pool(depth, feat, rd, rf, rb, (7, 6, 2))

    depth, feat, rd, rf, rb, grid = _case()
    path = str(tmp_path / 'pool.onnx')
    torch.onnx.export(Pool(), (depth, feat, rd, rf, rb), path, opset_version=17, dynamo=False,
                      input_names=['d', 'f', 'rd', 'rf', 'rb'],
                      dynamic_axes={k: {0: 'p'} for k in ('rd', 'rf', 'rb')})
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    # other indices (another camera set-up) through the same graph
    depth, feat, rd, rf, rb, _ = _case(seed=1)
    out = sess.run(None, dict(d=depth.numpy(), f=feat.numpy(), rd=rd.numpy(), rf=rf.numpy(), rb=rb.numpy()))[0]
    np.testing.assert_allclose(out, _reference(depth, feat, rd, rf, rb, grid).numpy(), rtol=1e-5, atol=1e-5)
