"""The BEVDepth4D detector (tiny config): frames, gradients, losses, predict,
with_prev, SequentialControlHook, quantization."""
import math
import time

import numpy as np
import pytest
import torch

from bevdet_testutils import (build_model, load_model_cfg, make_batch,
                              make_data_samples)

torch.set_num_threads(1)

IMG_HW = (128, 352)
N_CAMS = 6


def rigid(yaw_deg, t):
    """4x4 ``[Rz(yaw) | t]``."""
    a = math.radians(yaw_deg)
    m = torch.eye(4)
    m[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)],
                              [math.sin(a), math.cos(a)]])
    m[:3, 3] = torch.tensor(t, dtype=torch.float)
    return m


def make_seq_batch(batch=2, num_adj=1, seed=0, gt_depth=False):
    """Frame-major inputs: key frame, then ``num_adj`` earlier frames.

    The ego drove forward 2 m per frame and turned 3 deg, so adjacent frame
    ``t``'s cameras sit at ``motion_t @ sensor2ego`` in the current key ego;
    ``ego2globals`` are consistent with that (current pose ``G``).
    """
    cur = make_batch(batch, IMG_HW, N_CAMS, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    G = rigid(40.0, [300.0, -50.0, 1.0])
    s2e = cur['sensor2keyegos']
    s2ke, e2g, imgs = [s2e], [G.expand(batch, N_CAMS, 4, 4)], [cur['imgs']]
    for t in range(1, num_adj + 1):
        motion = rigid(-3.0 * t, [-2.0 * t, 0.1 * t, 0.0])  # adj -> cur ego
        s2ke.append(motion @ s2e)
        e2g.append((G @ motion).expand(batch, N_CAMS, 4, 4))
        imgs.append(torch.randn(batch, N_CAMS, 3, *IMG_HW, generator=g))
    T = num_adj + 1
    inputs = dict(
        imgs=torch.cat(imgs, 1),
        sensor2keyegos=torch.cat(s2ke, 1),
        ego2globals=torch.cat(e2g, 1),
        sensor2egos=s2e.repeat(1, T, 1, 1),
        intrins=cur['intrins'].repeat(1, T, 1, 1),
        post_rots=cur['post_rots'].repeat(1, T, 1, 1),
        post_trans=cur['post_trans'].repeat(1, T, 1),
        bda=cur['bda'])
    if gt_depth:
        d = torch.rand(batch, N_CAMS, *IMG_HW, generator=g) * 58 + 1
        keep = torch.rand(batch, N_CAMS, *IMG_HW, generator=g) > 0.97
        inputs['gt_depth'] = d * keep
    return inputs


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    model, _ = build_model('bevdepth4d-tiny.py')
    model.init_weights()
    return model


@pytest.fixture(autouse=True)
def _restore(tiny):
    """Tests may flip flags of the shared model; restore them."""
    flags = (tiny.with_prev, tiny.align_after_view_transformation,
             tiny.img_view_transformer.loss_depth_weight,
             tiny.mlp_input_key_extrinsics)
    yield
    (tiny.with_prev, tiny.align_after_view_transformation,
     tiny.img_view_transformer.loss_depth_weight,
     tiny.mlp_input_key_extrinsics) = flags


def test_build_through_registry_and_size(tiny):
    from ptqat.models import (BEVDepth4D, BEVDet, CustomResNet,
                              LSSViewTransformerBEVDepth)
    assert isinstance(tiny, BEVDepth4D) and isinstance(tiny, BEVDet)
    assert isinstance(tiny.img_view_transformer, LSSViewTransformerBEVDepth)
    assert isinstance(tiny.pre_process_net, CustomResNet)
    assert tiny.num_adj == 1 and tiny.num_frames == 2
    prefixes = {k.split('.')[0] for k in tiny.state_dict()}
    assert prefixes == {
        'img_backbone', 'img_neck', 'img_view_transformer',
        'pre_process_net', 'img_bev_encoder_backbone',
        'img_bev_encoder_neck', 'pts_bbox_head'
    }
    assert tiny.img_bev_encoder_backbone.layers[0][0].conv1.in_channels == 32
    n = sum(p.numel() for p in tiny.parameters())
    print(f'\nBEVDepth4D-tiny parameters: {n} ({n / 1e6:.3f} M)')
    assert n < 2.5e6, n


def test_upstream_spelling_accepted():
    from mmdet3d.registry import MODELS
    cfg = load_model_cfg('bevdepth4d-tiny.py')
    cfg.model.align_after_view_transfromation = True  # sic (upstream)
    model = MODELS.build(cfg.model)
    assert model.align_after_view_transformation is True
    cfg.model.pop('align_after_view_transfromation')
    cfg.model.num_adj = -1
    with pytest.raises(ValueError, match='num_adj'):
        MODELS.build(cfg.model)


def test_loss_with_gt_depth_backward(tiny):
    tiny.train()
    tiny.zero_grad()
    losses = tiny.loss(make_seq_batch(gt_depth=True), make_data_samples(2))
    assert set(losses) == {
        'task0.loss_heatmap', 'task0.loss_xy', 'task0.loss_z',
        'task0.loss_whl', 'task0.loss_yaw', 'task0.loss_vel', 'loss_depth'
    }
    for k, v in losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    sum(losses.values()).backward()
    params = dict(tiny.named_parameters())
    for name in [
            'img_backbone.conv1.weight', 'img_neck.fpn_convs.0.conv.weight',
            'img_view_transformer.depth_net.depth_mlp.fc1.weight',
            'img_view_transformer.depth_net.context_se.conv_expand.weight',
            'img_view_transformer.depth_net.depth_conv.3.conv1.weight',
            'img_view_transformer.depth_net.depth_conv.4.weight',
            'pre_process_net.layers.0.0.conv1.weight',
            'img_bev_encoder_backbone.layers.0.0.conv1.weight',
            'pts_bbox_head.task_heads.0.heatmap.1.weight'
    ]:
        p = params[name]
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_loss_without_gt_depth(tiny):
    tiny.train()
    inputs = make_seq_batch()
    with pytest.raises(KeyError, match='gt_depth'):
        tiny.loss(inputs, make_data_samples(2))  # weight 3.0 needs it
    tiny.img_view_transformer.loss_depth_weight = 0.0
    losses = tiny.loss(inputs, make_data_samples(2))
    assert 'loss_depth' not in losses and len(losses) == 6
    sum(losses.values()).backward()


def test_depth_loss_uses_key_frame(tiny):
    """``loss_depth`` compares gt_depth with the key frame's depth only."""
    tiny.eval()
    inputs = make_seq_batch(gt_depth=True)
    seen = []
    vt = tiny.img_view_transformer
    handle = vt.register_forward_hook(lambda m, a, out: seen.append(out[1]))
    with torch.no_grad():
        _, depth = tiny.extract_img_feat(inputs)
    handle.remove()
    assert len(seen) == 2 and depth is seen[0]
    assert depth.shape == (2, N_CAMS, vt.D, 8, 22)


def test_adjacent_frames_get_no_gradient(tiny):
    tiny.train()
    tiny.img_view_transformer.loss_depth_weight = 0.0
    inputs = make_seq_batch()
    imgs = inputs['imgs'].clone().requires_grad_(True)
    inputs['imgs'] = imgs
    grad_modes = []
    handle = tiny.img_backbone.register_forward_hook(
        lambda m, a, out: grad_modes.append(torch.is_grad_enabled()))
    losses = tiny.loss(inputs, make_data_samples(2))
    handle.remove()
    assert grad_modes == [True, False]  # key frame, then adjacent frame
    sum(losses.values()).backward()
    assert imgs.grad[:, :N_CAMS].abs().sum() > 0
    assert torch.count_nonzero(imgs.grad[:, N_CAMS:]) == 0


def test_adjacent_frame_matters(tiny):
    tiny.eval()
    inputs = make_seq_batch()
    other = dict(inputs)
    other['imgs'] = inputs['imgs'].clone()
    other['imgs'][:, N_CAMS:] = torch.randn_like(other['imgs'][:, N_CAMS:])
    with torch.no_grad():
        a = tiny(inputs, mode='tensor')[0][0]['heatmap']
        b = tiny(other, mode='tensor')[0][0]['heatmap']
    assert (a - b).abs().max() > 1e-4
    assert a.shape == (2, 10, 32, 32)


def test_wrong_number_of_frames_raises(tiny):
    tiny.eval()
    inputs = make_seq_batch()
    single = dict(inputs)
    single['imgs'] = inputs['imgs'][:, :N_CAMS]
    with pytest.raises(ValueError, match=r'T = num_adj \+ 1 = 2') as err:
        tiny(single, mode='tensor')
    assert '(2, 6, 3, 128, 352)' in str(err.value)
    three = make_seq_batch(num_adj=2)
    with pytest.raises(ValueError, match='T = 3 here'):
        tiny(three, mode='tensor')
    bad_cam = dict(inputs)
    bad_cam['intrins'] = inputs['intrins'][:, :N_CAMS]
    with pytest.raises(ValueError, match="inputs\\['intrins'\\]"):
        tiny(bad_cam, mode='tensor')
    with pytest.raises(ValueError, match=r'\(B, T\*N, 3, H, W\)'):
        tiny(dict(inputs, imgs=inputs['imgs'][0]), mode='tensor')


def test_with_prev_false_zeros_adjacent(tiny):
    tiny.eval()
    inputs = make_seq_batch()
    calls = []
    handle = tiny.img_backbone.register_forward_hook(
        lambda m, a, out: calls.append(1))
    with torch.no_grad():
        frames_on, _ = tiny.extract_bev_frames(inputs)
        tiny.with_prev = False
        frames_off, _ = tiny.extract_bev_frames(inputs)
        out_off = tiny(inputs, mode='tensor')[0][0]['heatmap']
        # the same as the full model fed an all-zero adjacent BEV map
        bev = torch.cat([frames_off[0], torch.zeros_like(frames_off[0])], 1)
        ref = tiny.pts_bbox_head([tiny.bev_encoder(bev)])[0][0]['heatmap']
    handle.remove()
    assert len(calls) == 2 + 1 + 1  # adjacent images skipped when off
    assert frames_on[1].abs().sum() > 0
    assert frames_off[1].shape == frames_on[1].shape == (2, 16, 32, 32)
    assert torch.count_nonzero(frames_off[1]) == 0
    torch.testing.assert_close(frames_off[0], frames_on[0])
    torch.testing.assert_close(out_off, ref)


def test_sensor2keyegos_from_sensor2egos_and_ego2globals(tiny):
    tiny.eval()
    inputs = make_seq_batch()
    alt = dict(inputs)
    alt.pop('sensor2keyegos')
    with torch.no_grad():
        a = tiny(inputs, mode='tensor')[0][0]['heatmap']
        b = tiny(alt, mode='tensor')[0][0]['heatmap']
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_mlp_input_extrinsics(tiny):
    """Upstream feeds the key frame's sensor2keyegos to every frame's
    DepthNet; ``mlp_input_key_extrinsics=False`` feeds each frame's own."""
    tiny.eval()
    inputs = make_seq_batch()
    key = inputs['sensor2keyegos'][:, :N_CAMS, :3, :].reshape(12, 12)
    adj = inputs['sensor2keyegos'][:, N_CAMS:, :3, :].reshape(12, 12)
    assert (key - adj).abs().max() > 1.0
    for flag, expect_adj in ((True, key), (False, adj)):
        tiny.mlp_input_key_extrinsics = flag
        seen = []
        handle = tiny.img_view_transformer.depth_net.register_forward_hook(
            lambda m, a, out: seen.append(a[1]))
        with torch.no_grad():
            tiny(inputs, mode='tensor')
        handle.remove()
        torch.testing.assert_close(seen[0][:, 15:], key)
        torch.testing.assert_close(seen[1][:, 15:], expect_adj)


def per_sample_data(batch=2, num_gt=5):
    """What a dataloader with pseudo_collate hands to the preprocessor."""
    inputs = make_seq_batch(batch, gt_depth=True)
    rng = np.random.RandomState(0)
    data = {'img': [torch.from_numpy(
        rng.randint(0, 256, (2 * N_CAMS, 3, *IMG_HW)).astype(np.uint8))
        for _ in range(batch)]}
    for k, v in inputs.items():
        if k != 'imgs':
            data[k] = [v[i] for i in range(batch)]
    return dict(inputs=data, data_samples=make_data_samples(batch, num_gt))


def test_train_step_and_time(tiny):
    """mmengine train_step (preprocessor, loss, backward, clip, AdamW)."""
    from mmengine.optim import OptimWrapper
    tiny.train()
    optim = OptimWrapper(torch.optim.AdamW(tiny.parameters(), lr=1e-4),
                         clip_grad=dict(max_norm=5, norm_type=2))
    w = tiny.img_view_transformer.depth_net.depth_mlp.fc1.weight
    before = w.detach().clone()
    data = per_sample_data()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        log = tiny.train_step(data, optim)
        times.append(time.perf_counter() - t0)
    assert torch.isfinite(log['loss']) and 'loss_depth' in log
    assert not torch.equal(before, w.detach())
    print(f'\nBEVDepth4D-tiny train_step (B=2, 2x6 images 128x352): '
          f'{", ".join(f"{t:.3f}" for t in times)} s')
    assert min(times) < 10.0  # generous: the CPU may be shared


def test_predict(tiny):
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    tiny.eval()
    with torch.no_grad():  # make sure some boxes pass the 0.1 threshold
        bias = tiny.pts_bbox_head.task_heads[0].heatmap[-1].bias
        saved = bias.clone()
        bias.fill_(0.0)
        out = tiny.predict(make_seq_batch(), make_data_samples(2))
        bias.copy_(saved)
    assert len(out) == 2
    for s in out:
        assert isinstance(s, Det3DDataSample)
        inst = s.pred_instances_3d
        assert isinstance(inst.bboxes_3d, LiDARInstance3DBoxes)
        assert len(inst.bboxes_3d) > 0 and inst.bboxes_3d.tensor.shape[1] == 9
        assert inst.scores_3d.shape == inst.labels_3d.shape


# ------------------------------------------------------------------ hook
class _Runner:

    def __init__(self, model, epoch=0, it=0):
        self.model, self.epoch, self.iter = model, epoch, it


def test_sequential_control_hook(tiny):
    from mmdet3d.registry import HOOKS
    from ptqat.models import SequentialControlHook
    hook = HOOKS.build(dict(type='SequentialControlHook',
                            temporal_start_epoch=2))
    assert isinstance(hook, SequentialControlHook)
    runner = _Runner(tiny)
    flags = []
    for epoch in range(5):
        runner.epoch = epoch
        if epoch == 0:
            hook.before_train(runner)
        hook.before_train_epoch(runner)
        flags.append(tiny.with_prev)
    assert flags == [False, False, False, True, True]  # upstream: epoch > 2
    hook.after_train(runner)
    assert tiny.with_prev is True
    # resuming at epoch 3 switches it on right away
    hook.before_train(_Runner(tiny, epoch=3))
    assert tiny.with_prev is True
    # iteration-based loops
    it_hook = SequentialControlHook(temporal_start_iter=10)
    it_hook.before_train(_Runner(tiny, it=0))
    assert tiny.with_prev is False
    it_hook.before_train_iter(_Runner(tiny, it=9), 9)
    assert tiny.with_prev is False
    it_hook.before_train_iter(_Runner(tiny, it=10), 10)
    assert tiny.with_prev is True
    with pytest.raises(AttributeError, match='with_prev'):
        hook.before_train_epoch(_Runner(torch.nn.Linear(1, 1)))
    with pytest.raises(ValueError, match='temporal_start_epoch'):
        SequentialControlHook(temporal_start_epoch=1.5)


# ---------------------------------------------------------- quantization
def test_quantize_model_covers_depth_net():
    from ptqat.quant import (QuantConv2d, QuantLinear, calibrate,
                             quantize_model)
    torch.manual_seed(0)
    model, _ = build_model('bevdepth4d-tiny.py')
    model.eval()
    names = quantize_model(model, dict(w_bits=4, a_bits=8))
    dn = 'img_view_transformer.depth_net.'
    for sub in ['reduce_conv.0', 'context_conv', 'depth_mlp.fc1',
                'depth_mlp.fc2', 'context_mlp.fc1', 'context_mlp.fc2',
                'depth_se.conv_reduce', 'depth_se.conv_expand',
                'context_se.conv_reduce', 'context_se.conv_expand',
                'depth_conv.0.conv1', 'depth_conv.3.aspp2.atrous_conv',
                'depth_conv.3.global_avg_pool.1', 'depth_conv.3.conv1',
                'depth_conv.4']:
        assert dn + sub in names, sub
    assert 'pre_process_net.layers.0.0.conv1' in names
    assert 'pre_process_net.layers.0.0.downsample' in names
    mods = dict(model.named_modules())
    assert isinstance(mods[dn + 'depth_mlp.fc1'], QuantLinear)
    assert isinstance(mods[dn + 'depth_conv.4'], QuantConv2d)
    batches = [make_seq_batch(1, seed=s) for s in range(2)]
    calibrate(model, batches, lambda m, b: m(b, mode='tensor'),
              progress=False)
    with torch.no_grad():
        out = model(make_seq_batch(1, seed=5), mode='tensor')[0][0]
    assert out['heatmap'].shape == (1, 10, 32, 32)
    assert torch.isfinite(out['heatmap']).all()
