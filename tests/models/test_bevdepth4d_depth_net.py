"""BEVDepth's DepthNet (Mlp, SELayer, ASPP) and LSSViewTransformerBEVDepth."""
import pytest
import torch
from torch import nn

from bevdet_testutils import make_camera_inputs

torch.set_num_threads(1)

IMG_HW = (128, 352)
GRID = {
    'x': [-51.2, 51.2, 3.2],
    'y': [-51.2, 51.2, 3.2],
    'z': [-5, 3, 8],
    'depth': [1.0, 60.0, 2.0],
}


def small_depth_net(**kw):
    from ptqat.models import DepthNet
    torch.manual_seed(0)
    args = dict(in_channels=24, mid_channels=32, context_channels=16,
                depth_channels=30, aspp_mid_channels=8)
    args.update(kw)
    return DepthNet(**args)


def small_vt(**kw):
    from ptqat.models import LSSViewTransformerBEVDepth
    torch.manual_seed(0)
    args = dict(grid_config=GRID, input_size=IMG_HW, in_channels=32,
                out_channels=16, downsample=16,
                depthnet_cfg=dict(aspp_mid_channels=16))
    args.update(kw)
    return LSSViewTransformerBEVDepth(**args)


def test_depth_net_shape_and_names():
    net = small_depth_net().eval()
    x = torch.randn(5, 24, 8, 22)
    out = net(x, torch.randn(5, 27))
    assert out.shape == (5, 30 + 16, 8, 22)
    # a (B, N, 27) camera vector is accepted as well
    out2 = net(x, torch.randn(1, 5, 27))
    assert out2.shape == out.shape
    names = {k for k, _ in net.named_parameters()}
    for key in [
            'reduce_conv.0.weight', 'reduce_conv.0.bias',
            'reduce_conv.1.weight', 'context_conv.weight', 'bn.weight',
            'depth_mlp.fc1.weight', 'depth_mlp.fc2.bias',
            'context_mlp.fc1.weight', 'depth_se.conv_reduce.weight',
            'depth_se.conv_expand.bias', 'context_se.conv_reduce.bias',
            'depth_conv.0.conv1.weight', 'depth_conv.2.bn2.bias',
            'depth_conv.3.aspp1.atrous_conv.weight',
            'depth_conv.3.aspp4.bn.weight',
            'depth_conv.3.global_avg_pool.1.weight',
            'depth_conv.3.global_avg_pool.2.bias', 'depth_conv.3.conv1.weight',
            'depth_conv.3.bn1.weight', 'depth_conv.4.weight',
            'depth_conv.4.bias'
    ]:
        assert key in names, key
    assert isinstance(net.bn, nn.BatchNorm1d) and net.bn.num_features == 27
    assert net.depth_conv[3].aspp2.atrous_conv.dilation == (6, 6)
    assert net.depth_conv[3].aspp4.atrous_conv.dilation == (18, 18)
    assert net.depth_conv[3].conv1.in_channels == 5 * 8
    # without ASPP the last conv follows the three BasicBlocks directly
    plain = small_depth_net(use_aspp=False)
    assert isinstance(plain.depth_conv[3], nn.Conv2d)


def test_mlp_input_changes_depth_and_context():
    net = small_depth_net().eval()
    with torch.no_grad():  # non-trivial BN statistics and SE weights
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 24, 8, 22)
    m1, m2 = torch.randn(3, 27), torch.randn(3, 27)
    with torch.no_grad():
        a, a2, b = net(x, m1), net(x, m1), net(x, m2)
    torch.testing.assert_close(a, a2)
    D = 30
    assert (a[:, :D] - b[:, :D]).abs().max() > 1e-3  # depth logits
    assert (a[:, D:] - b[:, D:]).abs().max() > 1e-3  # context
    # one changed camera only changes that camera's output
    m3 = m1.clone()
    m3[1, 5] += 3.0
    with torch.no_grad():
        c = net(x, m3)
    torch.testing.assert_close(c[[0, 2]], a[[0, 2]])
    assert (c[1] - a[1]).abs().max() > 1e-3


def test_depth_net_rejects_bad_inputs():
    net = small_depth_net().eval()
    with pytest.raises(ValueError, match='27 values'):
        net(torch.randn(2, 24, 8, 22), torch.randn(2, 26))
    with pytest.raises(ValueError, match='27 values'):
        net(torch.randn(2, 24, 8, 22), torch.randn(3, 27))
    with pytest.raises(ValueError, match=r'\(M, 24, H, W\)'):
        net(torch.randn(2, 20, 8, 22), torch.randn(2, 27))


def test_se_layer_and_mlp_formulas():
    from ptqat.models import Mlp, SELayer
    torch.manual_seed(0)
    se = SELayer(6)
    x, x_se = torch.randn(2, 6, 4, 5), torch.randn(2, 6, 1, 1)
    gate = torch.sigmoid(se.conv_expand(torch.relu(se.conv_reduce(x_se))))
    torch.testing.assert_close(se(x, x_se), x * gate)
    mlp = Mlp(27, 12, 7)
    v = torch.randn(4, 27)
    torch.testing.assert_close(mlp(v), mlp.fc2(torch.relu(mlp.fc1(v))))
    assert mlp(v).shape == (4, 7)


def test_aspp_shape():
    from ptqat.models import ASPP
    aspp = ASPP(32, mid_channels=8).eval()
    assert aspp(torch.randn(2, 32, 8, 22)).shape == (2, 32, 8, 22)
    with pytest.raises(ValueError, match='4 dilations'):
        ASPP(32, 8, dilations=(1, 6))


def test_get_mlp_input_layout():
    from ptqat.models import LSSViewTransformerBEVDepth
    B, N = 2, 3
    s2e = torch.arange(B * N * 16, dtype=torch.float).view(B, N, 4, 4)
    K = torch.tensor([[100.0, 0, 50], [0, 110, 40], [0, 0, 1]])
    intrins = K.expand(B, N, 3, 3)
    post_rots = torch.tensor([[0.5, 0.1, 0], [0.2, 0.6, 0],
                              [0, 0, 1]]).expand(B, N, 3, 3)
    post_trans = torch.tensor([-3.0, -7.0, 0]).expand(B, N, 3)
    bda = torch.tensor([[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0.9, 0],
                        [0, 0, 0, 1]]).expand(B, 4, 4)
    m = LSSViewTransformerBEVDepth.get_mlp_input(s2e, intrins, post_rots,
                                                 post_trans, bda)
    assert m.shape == (B, N, 27)
    head = torch.tensor([100.0, 110, 50, 40, 0.5, 0.1, -3, 0.2, 0.6, -7,
                         0, -1, 1, 0, 0.9])
    torch.testing.assert_close(m[1, 2, :15], head)
    torch.testing.assert_close(m[1, 2, 15:], s2e[1, 2, :3, :].reshape(12))
    # a 3x3 bda gives the same vector
    m3 = LSSViewTransformerBEVDepth.get_mlp_input(
        s2e, intrins, post_rots, post_trans, bda[:, :3, :3])
    torch.testing.assert_close(m3, m)
    with pytest.raises(ValueError, match='bda'):
        LSSViewTransformerBEVDepth.get_mlp_input(s2e, intrins, post_rots,
                                                 post_trans, bda[0])


def test_view_transformer_forward_uses_cameras():
    from ptqat.models import DepthNet, LSSViewTransformer
    vt = small_vt().eval()
    assert isinstance(vt, LSSViewTransformer)  # reuses lift/geometry/splat
    assert isinstance(vt.depth_net, DepthNet)
    assert vt.loss_depth_weight == 3.0 and vt.D == 30
    assert {k.split('.')[0] for k in vt.state_dict()} == {'depth_net'}
    cams = make_camera_inputs(2, IMG_HW)
    feats = torch.randn(2, 6, 32, 8, 22)
    with torch.no_grad():
        # BN statistics of a trained model: centred camera vectors (raw
        # intrinsics of ~1000 px would saturate the SE gates)
        mlp = vt.get_mlp_input(cams['sensor2keyegos'], cams['intrins'],
                               cams['post_rots'], cams['post_trans'],
                               cams['bda'])
        vt.depth_net.bn.running_mean.copy_(mlp.flatten(0, 1).mean(0))
        bev, depth = vt(feats, img_shape=IMG_HW, **cams)
        assert bev.shape == (2, 16, 32, 32)
        assert depth.shape == (2, 6, 30, 8, 22)
        torch.testing.assert_close(
            depth.sum(2), torch.ones(2, 6, 8, 22), atol=1e-5, rtol=0)
        # an explicit mlp_input equal to the computed one changes nothing
        bev2, depth2 = vt(feats, img_shape=IMG_HW, mlp_input=mlp, **cams)
        torch.testing.assert_close(depth2, depth)
        torch.testing.assert_close(bev2, bev)
        # the camera vector reaches the DepthNet, one row per image
        seen = []
        handle = vt.depth_net.register_forward_hook(
            lambda mod, args, out: seen.append(args[1]))
        vt(feats, img_shape=IMG_HW, **cams)
        _, depth3 = vt(feats, img_shape=IMG_HW, mlp_input=mlp + 1.0, **cams)
        handle.remove()
        torch.testing.assert_close(seen[0], mlp.reshape(12, 27))
        torch.testing.assert_close(seen[1], mlp.reshape(12, 27) + 1.0)
        # and changes the depth distribution
        assert (depth3.log() - depth.log()).abs().max() > 1e-4
        with pytest.raises(ValueError, match='mlp_input'):
            vt(feats, img_shape=IMG_HW, mlp_input=mlp[:, :5], **cams)


def test_depth_loss_and_mid_channels():
    vt = small_vt(loss_depth_weight=1.5,
                  depthnet_cfg=dict(aspp_mid_channels=8, mid_channels=12))
    assert vt.depth_net.reduce_conv[0].out_channels == 12
    assert vt.loss_depth_weight == 1.5
    gt = torch.zeros(1, 6, *IMG_HW)
    gt[0, :, 40:60, 100:140] = 12.3
    depth = torch.full((1, 6, 30, 8, 22), 1.0 / 30)
    loss = vt.get_depth_loss(gt, depth)
    assert loss.dim() == 0 and loss > 0
    vt.loss_depth_weight = 3.0
    torch.testing.assert_close(vt.get_depth_loss(gt, depth), loss * 2)
