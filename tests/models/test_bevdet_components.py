"""CustomFPN, CustomResNet, FPN_LSS and the LSS view-transformer geometry."""
import math

import pytest
import torch
from mmengine.registry import init_default_scope

import ptqat.models  # noqa: F401  (registration)
from mmdet3d.registry import MODELS

init_default_scope('mmdet3d')


def test_custom_fpn_matches_mmdet_fpn_level0():
    torch.manual_seed(0)
    neck = MODELS.build(
        dict(type='CustomFPN', in_channels=[8, 16], out_channels=4,
             num_outs=1, start_level=0, out_ids=[0]))
    keys = set(neck.state_dict())
    assert keys == {
        'lateral_convs.0.conv.weight', 'lateral_convs.0.conv.bias',
        'lateral_convs.1.conv.weight', 'lateral_convs.1.conv.bias',
        'fpn_convs.0.conv.weight', 'fpn_convs.0.conv.bias'
    }
    ref = MODELS.build(
        dict(type='mmdet.FPN', in_channels=[8, 16], out_channels=4,
             num_outs=2))
    ref.load_state_dict(neck.state_dict(), strict=False)
    feats = [torch.randn(2, 8, 12, 20), torch.randn(2, 16, 6, 10)]
    out = neck(feats)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4, 12, 20)
    torch.testing.assert_close(out, ref(feats)[0])


def test_custom_fpn_other_out_ids():
    neck = MODELS.build(
        dict(type='CustomFPN', in_channels=[8, 16, 32], out_channels=4,
             num_outs=2, out_ids=[2, 0]))
    feats = [torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8),
             torch.randn(1, 32, 4, 4)]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 4, 4, 4), (1, 4, 16, 16)]
    assert len(neck.fpn_convs) == 2


def test_custom_resnet_and_fpn_lss_shapes():
    bb = MODELS.build(
        dict(type='CustomResNet', numC_input=8, num_layer=[2, 2, 2],
             num_channels=[16, 32, 64], stride=[2, 2, 2]))
    sd = bb.state_dict()
    assert sd['layers.0.0.downsample.weight'].shape == (16, 8, 3, 3)
    assert sd['layers.0.0.downsample.bias'].shape == (16, )
    assert 'layers.0.1.downsample.weight' not in sd
    x = torch.randn(2, 8, 32, 32)
    feats = bb(x)
    assert [tuple(f.shape) for f in feats] == [
        (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]
    neck = MODELS.build(
        dict(type='FPN_LSS', in_channels=64 + 16, out_channels=24))
    out = neck(feats)
    assert out.shape == (2, 24, 32, 32)
    assert set(k.split('.')[0] for k in neck.state_dict()) == {'conv', 'up2'}


# ----------------------------------------------------------------- geometry
GRID = dict(x=[-10.0, 10.0, 1.0], y=[-10.0, 10.0, 1.0], z=[-5.0, 3.0, 8.0],
            depth=[1.0, 11.0, 1.0])


def front_camera():
    """Camera looking along ego +x, mounted at (1.3, 0.5, 1.5)."""
    s2e = torch.eye(4)
    s2e[:3, :3] = torch.tensor([[0.0, 0.0, 1.0],    # ego x = cam z
                                [-1.0, 0.0, 0.0],   # ego y = -cam x
                                [0.0, -1.0, 0.0]])  # ego z = -cam y
    s2e[:3, 3] = torch.tensor([1.3, 0.5, 1.5])
    K = torch.tensor([[50.0, 0.0, 48.0], [0.0, 50.0, 32.0], [0.0, 0.0, 1.0]])
    # image augmentation: resize by 0.6, then crop at (x0, y0) = (10, 12)
    post_rot = torch.diag(torch.tensor([0.6, 0.6, 1.0]))
    post_tran = torch.tensor([-10.0, -12.0, 0.0])
    return (s2e.view(1, 1, 4, 4), K.view(1, 1, 3, 3),
            post_rot.view(1, 1, 3, 3), post_tran.view(1, 1, 3))


def rot_z(deg):
    a = math.radians(deg)
    m = torch.eye(4)
    m[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)],
                              [math.sin(a), math.cos(a)]])
    return m


# Frustum point (d index 4, h index 1, w index 2) of a 64x96 input with
# 4x6 features: u' = linspace(0, 95, 6)[2] = 38, v' = linspace(0, 63, 4)[1]
# = 21, d = 5.  Undo the augmentation: u = (38 + 10) / 0.6 = 80,
# v = (21 + 12) / 0.6 = 55.  Camera: x = (80 - 48) * 5 / 50 = 3.2,
# y = (55 - 32) * 5 / 50 = 2.3, z = 5.  Ego: (5 + 1.3, -3.2 + 0.5,
# -2.3 + 1.5) = (6.3, -2.7, -0.8) -> cell ix = int(16.3) = 16,
# iy = int(7.3) = 7, iz = int(0.525) = 0.
# With bda = rotation by +90 deg about z: (2.7, 6.3, -0.8) -> ix 12, iy 16.
@pytest.mark.parametrize('bda_deg, point, cell', [
    (0.0, (6.3, -2.7, -0.8), (7, 16)),
    (90.0, (2.7, 6.3, -0.8), (16, 12)),
])
def test_view_transformer_geometry(bda_deg, point, cell):
    vt = MODELS.build(
        dict(type='LSSViewTransformer', grid_config=GRID, input_size=None,
             in_channels=3, out_channels=2, downsample=16))
    assert vt.D == 10 and vt.grid_size == [20, 20, 1]
    s2e, K, post_rot, post_tran = front_camera()
    bda = rot_z(bda_deg).view(1, 4, 4)

    frustum = vt.create_frustum((64, 96), (4, 6))
    assert frustum.shape == (10, 4, 6, 3)
    torch.testing.assert_close(frustum[4, 1, 2], torch.tensor([38., 21., 5.]))
    coor = vt.get_geometry(s2e, K, post_rot, post_tran, bda, frustum)
    assert coor.shape == (1, 1, 10, 4, 6, 3)
    torch.testing.assert_close(
        coor[0, 0, 4, 1, 2], torch.tensor(point), atol=1e-4, rtol=1e-4)

    # full forward: one-hot depth at bin 4 and a context that is 1 only at
    # feature pixel (h=1, w=2) -> exactly one BEV cell gets the value 1
    with torch.no_grad():
        vt.depth_net.weight.zero_()
        vt.depth_net.bias.zero_()
        vt.depth_net.bias[4] = 50.0  # depth logits
        vt.depth_net.weight[vt.D, 0, 0, 0] = 1.0  # context ch 0 = input ch 0
    feats = torch.zeros(1, 1, 3, 4, 6)
    feats[0, 0, 0, 1, 2] = 1.0
    bev, depth = vt(
        feats, s2e, K, post_rot, post_tran, bda, img_shape=(64, 96))
    assert bev.shape == (1, 2, 20, 20) and depth.shape == (1, 1, 10, 4, 6)
    nz = torch.nonzero(bev[0, 0] > 1e-3).tolist()
    assert nz == [list(cell)]  # rows are y, columns are x
    assert bev[0, 0, cell[0], cell[1]].item() == pytest.approx(1.0, abs=1e-6)
    assert bev[0, 1].abs().max() == 0


def test_view_transformer_frustum_cache_per_shape():
    vt = MODELS.build(
        dict(type='LSSViewTransformer', grid_config=GRID, input_size=(64, 96),
             in_channels=3, out_channels=2, downsample=16))
    s2e, K, post_rot, post_tran = front_camera()
    bda = torch.eye(4).view(1, 4, 4)
    for hw in [(4, 6), (2, 3), (4, 6)]:
        feats = torch.randn(1, 1, 3, *hw)
        bev, depth = vt(feats, s2e, K, post_rot, post_tran, bda,
                        img_shape=(hw[0] * 16, hw[1] * 16))
        assert bev.shape == (1, 2, 20, 20)
        assert depth.shape == (1, 1, 10, *hw)
    assert len(vt._frustum_cache) == 2
    assert list(vt.state_dict()) == ['depth_net.weight', 'depth_net.bias']
