"""BEVFormer with the dense tasks (``BEVFormerOCC`` / ``BEVFormerSeg``): the LiDAR -> key-ego BEV
resampling puts a marked cell where the transform says, the tiny and full-size configs build
without the detection decoder, one loss / backward / predict / tensor forward on a tiny input,
their PTQAT configs quantize the heads, and bad configs or inputs are clear errors."""
import os.path as osp

import numpy as np
import pytest
import torch
from bevformer_testutils import make_meta

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs')
TINY = {
    'occ': osp.join(CFG, 'bevformer-occ', 'bevformer-occ-tiny_synth.py'),
    'seg': osp.join(CFG, 'bevformer-seg', 'bevformer-seg-tiny_synth.py'),
}
BASE = {
    'occ': osp.join(CFG, 'bevformer-occ', 'bevformer-occ-base_8xb1-24e_nus.py'),
    'seg': osp.join(CFG, 'bevformer-seg', 'bevformer-seg-base_8xb1-24e_nus.py'),
}
PC = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


def _cfg(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import ptqat.plugin  # noqa: F401
    init_default_scope('mmdet3d')
    return Config.fromfile(path)


def _build(model_cfg, seed=0):
    from mmdet3d.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(model_cfg)


def _l2e(yaw_deg=0.0, t=(0.0, 0.0, 0.0)):
    a = np.radians(yaw_deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    m[:3, 3] = t
    return m


# --------------------------------------------------------------------------- geometry
def test_lidar_bev_to_keyego_identity_is_exact():
    from ptqat.models.bevformer import lidar_bev_to_keyego
    bev = torch.randn(2, 3, 32, 32)
    out = lidar_bev_to_keyego(bev, torch.as_tensor(np.stack([_l2e()] * 2)), PC)
    assert torch.allclose(out, bev, atol=1e-5)


def test_lidar_bev_to_keyego_moves_a_marked_cell():
    """LiDAR cell (row 16, col 20) = (x 14.4, y 1.6) m; LiDAR -> ego rotates by +90 deg and
    shifts by (3.2, 0): ego (1.6, 14.4) m = (row 20, col 16). nuScenes' LiDAR is about 90 deg
    off the ego frame, so an axis mix-up would land elsewhere."""
    from ptqat.models.bevformer import lidar_bev_to_keyego
    bev = torch.zeros(1, 1, 32, 32)
    bev[0, 0, 16, 20] = 1.0
    out = lidar_bev_to_keyego(bev, torch.as_tensor(_l2e(90.0, (3.2, 0.0, 1.8)))[None], PC)[0, 0]
    assert out[20, 16] == pytest.approx(1.0, abs=1e-5)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-4)
    # a cell that leaves the grid is dropped, the rest is zero-filled
    bev2 = torch.ones(1, 1, 32, 32)
    out2 = lidar_bev_to_keyego(bev2, torch.as_tensor(_l2e(0.0, (10.0 * 3.2, 0, 0)))[None], PC)[0, 0]
    assert torch.all(out2[:, :10] == 0) and torch.allclose(out2[:, 10:], torch.ones(32, 22))


# --------------------------------------------------------------------------- tiny configs
def _samples(task, n=1, frames=3, hw=(64, 96), frame_idx=0):
    from mmdet3d.structures import Det3DDataSample
    out = []
    for b in range(n):
        metas = [dict(make_meta(f'scene-{b}', t, pos=(2.0 * t, 0.0, 0.0), yaw_deg=3.0 * t,
                                img_hw=hw), lidar2keyego=_l2e(90.0, (0.9, 0.0, 1.8)))
                 for t in range(frames)]
        cur = dict(metas[-1], queue_metas=metas[:-1]) if frames > 1 else metas[-1]
        if frames == 1:
            cur['frame_idx'] = frame_idx
        out.append(Det3DDataSample(metainfo=cur))
    return out


def _targets(task, n):
    g = torch.Generator().manual_seed(1)
    if task == 'occ':
        return dict(voxel_semantics=torch.randint(0, 18, (n, 200, 200, 16), generator=g,
                                                  dtype=torch.uint8),
                    mask_camera=torch.rand(n, 200, 200, 16, generator=g) > 0.5)
    return dict(gt_masks_bev=(torch.rand(n, 6, 200, 200, generator=g) > 0.7).to(torch.uint8))


@pytest.mark.parametrize('task', ['occ', 'seg'])
def test_tiny_dense_config_loss_backward_predict(task):
    torch.set_num_threads(1)
    cfg = _cfg(TINY[task])
    model = _build(cfg.model)
    assert type(model).__name__ == {'occ': 'BEVFormerOCC', 'seg': 'BEVFormerSeg'}[task]
    keys = list(model.state_dict())
    assert not any('decoder' in k or 'query_embedding' in k or 'branches' in k
                   or 'reference_points' in k for k in keys)  # BEV encoder only
    head = model.occ_head if task == 'occ' else model.map_head
    assert (model.occ_head is None) == (task == 'seg') and head is not None

    model.train()
    B = 2
    inputs = dict(imgs=torch.randn(B, 3, 6, 3, 64, 96), **_targets(task, B))
    losses = model.loss(inputs, _samples(task, B))
    expect = {'loss_occ'} if task == 'occ' else {
        f'loss_{c}_focal' for c in cfg.seg_classes}
    assert set(losses) == expect
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    enc = model.pts_bbox_head.transformer.encoder
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.img_backbone.parameters())

    model.eval()
    with torch.no_grad():
        outs = model._forward(dict(imgs=inputs['imgs'][:1]), _samples(task, 1))
        assert len(outs) == 1
        shape = (1, 200, 200, 16, 18) if task == 'occ' else (1, 6, 200, 200)
        assert tuple(outs[0].shape) == shape
        model.video_test_mode = True
        model.reset_test_cache()
        for t in range(2):  # the BEV cache is used from the second frame on
            res = model.predict(dict(imgs=torch.randn(1, 6, 3, 64, 96)),
                                _samples(task, 1, frames=1, frame_idx=t))
            assert (model.prev_frame_info['prev_bev'] is not None)
    if task == 'occ':
        assert res[0].pred_occ.shape == (200, 200, 16) and res[0].pred_occ.dtype == torch.uint8
        assert int(res[0].pred_occ.max()) < 18
    else:
        p = res[0].pred_masks_bev
        assert p.shape == (6, 200, 200) and 0 <= float(p.min()) <= float(p.max()) <= 1


@pytest.mark.parametrize('task', ['occ', 'seg'])
def test_full_size_dense_config_builds_without_decoder(task):
    cfg = _cfg(BASE[task])
    cfg.model.img_backbone.init_cfg = None
    model = _build(cfg.model)
    keys = list(model.state_dict())
    assert not any('decoder' in k or 'query_embedding' in k for k in keys)
    assert sum('.encoder.layers.' in k for k in keys) > 0
    head = model.occ_head if task == 'occ' else model.map_head
    assert head.grid_transform.input_shape == (200, 200)
    assert head.grid_transform.output_shape == (200, 200)
    names = [t['type'] for t in cfg.train_pipeline]
    assert 'LoadAnnotations3D' not in names and names[-3:-1] == [
        'LidarToKeyEgo', 'LoadOccGTFromFile' if task == 'occ' else 'LoadBEVSegmentation']
    assert cfg.train_dataloader.dataset.filter_empty_gt is False


@pytest.mark.parametrize('task, variant, strategy', [
    ('occ', 'ptq', 'none'), ('occ', 'qat', 'all'), ('occ', 'ptqat', 'small'),
    ('occ', 'ptqat-large', 'large'), ('seg', 'ptqat', 'small')])
def test_tiny_dense_ptqat_configs_quantize_the_heads(task, variant, strategy):
    from ptqat.quant import quantized_layers
    path = osp.join(CFG, 'ptqat', f'bevformer-{task}', f'bevformer-{task}-tiny_{variant}-w4a8_synth.py')
    cfg = _cfg(path)
    assert cfg.custom_hooks[0]['strategy'] == strategy
    model = _build(cfg.model)
    layers = dict(quantized_layers(model))
    out = 'occ_head.predicter.2' if task == 'occ' else 'map_head.classifier.6'
    head = [n for n in layers if '_head.' in n and 'pts_bbox_head' not in n]
    assert head and any(n.endswith(out) for n in head)
    eight = {n for n, m in layers.items() if m.weight_quantizer.bits == 8}
    assert any(n.endswith(out) for n in eight)
    assert any(n.endswith('img_backbone.conv1') for n in eight)
    assert all(n.endswith(('sampling_offsets', 'conv1', out)) for n in eight)
    assert any(n.endswith('sampling_offsets') for n in eight)


# --------------------------------------------------------------------------- bad input
def test_dense_bevformer_bad_configs_are_errors():
    cfg = _cfg(TINY['occ'])
    bad = cfg.model.copy()
    bad.occ_head = dict(bad.occ_head, input_bounds=[[-40.0, 40.0, 2.5], [-40.0, 40.0, 2.5]])
    with pytest.raises(ValueError, match='input_bounds'):
        _build(bad)
    bad = cfg.model.copy()
    bad.occ_head = None
    with pytest.raises(ValueError, match='occ_head and / or map_head'):
        _build(bad)
    bad = cfg.model.copy()
    bad.pts_bbox_head = None
    with pytest.raises(ValueError, match='pts_bbox_head'):
        _build(bad)


def test_dense_bevformer_without_lidar2keyego_is_an_error():
    model = _build(_cfg(TINY['seg']).model)
    samples = _samples('seg', 1)
    meta = dict(samples[0].metainfo)
    meta.pop('lidar2keyego')
    samples[0].set_metainfo(dict(lidar2keyego=None))
    with pytest.raises(KeyError, match='LidarToKeyEgo'):
        model.loss(dict(imgs=torch.randn(1, 3, 6, 3, 64, 96), **_targets('seg', 1)), samples)


def test_encoder_only_head_refuses_detection():
    model = _build(_cfg(TINY['seg']).model)
    with pytest.raises(ValueError, match='only_bev'):
        model.pts_bbox_head([torch.randn(1, 6, 32, 2, 3)], [make_meta(img_hw=(64, 96))])
