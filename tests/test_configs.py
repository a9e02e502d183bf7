"""Every config parses; the PTQAT configs build quantized models with the intended settings."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '/_base_/' not in p)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type in ('BEVDet', 'BEVDepth4D', 'BEVFormer', 'SparseBEV', 'PTQATModel', 'BEVDetOCC',
                              'BEVDepth4DOCC', 'BEVDetSeg', 'BEVFormerOCC', 'BEVFormerSeg')
    assert 'ptqat.plugin' in cfg.custom_imports.imports


def _build(path):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from ptqat.quant import quantized_layers
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    return cfg, dict(quantized_layers(model))


@pytest.mark.parametrize('arch', ['bevdet', 'bevdepth4d'])
@pytest.mark.parametrize('variant, strategy, w_bits, a_bits', [
    ('ptq-w4a8', 'none', 4, 8), ('qat-w4a8', 'all', 4, 8), ('ptqat-w4a8', 'small', 4, 8),
    ('ptqat-large-w4a8', 'large', 4, 8), ('ptqat-w4', 'small', 4, None),
    ('ptqat-w8a8', 'small', 8, 8)])
def test_tiny_ptqat_configs_build(arch, variant, strategy, w_bits, a_bits):
    cfg, layers = _build(osp.join(ROOT, 'configs', 'ptqat', arch, f'{arch}-tiny_{variant}_synth.py'))
    assert cfg.model.model.type == {'bevdet': 'BEVDet', 'bevdepth4d': 'BEVDepth4D'}[arch]
    assert [h['type'] for h in cfg.custom_hooks] == ['PTQATHook', 'ResourceUsageHook']
    assert cfg.custom_hooks[0]['strategy'] == strategy
    assert len(layers) > 40
    bits = {n: m.weight_quantizer.bits for n, m in layers.items()}
    eight = sorted(n for n, b in bits.items() if b == 8)
    assert w_bits == 8 or eight == ['img_backbone.conv1'] + [
        f'pts_bbox_head.task_heads.0.{h}.1' for h in ('dim', 'heatmap', 'height', 'reg', 'rot', 'vel')]
    assert set(bits.values()) == {w_bits, 8}
    has_act = {m.input_quantizer is not None and m.input_quantizer.enabled for m in layers.values()}
    assert has_act == {a_bits is not None}


def test_r50_ptqat_config_builds():
    cfg, layers = _build(osp.join(ROOT, 'configs', 'ptqat', 'bevdet', 'bevdet-r50_ptqat-w4a8_nus.py'))
    assert len(layers) == 89  # every Conv2d of BEVDet-R50
    assert sum(m.weight_quantizer.bits == 8 for m in layers.values()) == 7


def test_bevdepth4d_configs_agree():
    """The full-size training configs build the model bases (counts are tested with them),
    the long-term one with 8 adjacent frames in the model and in the data."""
    base = osp.join(ROOT, 'configs', '_base_', 'models')
    top = osp.join(ROOT, 'configs', 'bevdepth4d')
    for top_name, base_name, adj in (
            ('bevdepth4d-r50_8xb8-cbgs-20e_nus.py', 'bevdepth4d-r50.py', (1, 2, 1)),
            ('bevdepth4d-r50-longterm_8xb8-cbgs-20e_nus.py', 'bevdepth4d-r50-longterm.py',
             (1, 9, 1))):
        cfg = Config.fromfile(osp.join(top, top_name))
        assert cfg.model == Config.fromfile(osp.join(base, base_name)).model, top_name
        assert tuple(cfg.train_dataloader.dataset.dataset.multi_adj_frame_id_cfg) == adj
        assert tuple(cfg.val_dataloader.dataset.multi_adj_frame_id_cfg) == adj
        assert cfg.model.num_adj == len(range(*adj))
        assert cfg.train_dataloader.dataset.type == 'CBGSDataset'
        assert [h['type'] for h in cfg.custom_hooks] == ['SequentialControlHook']


def test_bevdepth4d_r50_ptqat_config_builds():
    cfg, layers = _build(
        osp.join(ROOT, 'configs', 'ptqat', 'bevdepth4d', 'bevdepth4d-r50_ptqat-w4a8_nus.py'))
    names = set(layers)
    # the DepthNet's convs and camera-MLP linears are quantized too
    assert 'img_view_transformer.depth_net.depth_mlp.fc1' in names
    assert 'img_view_transformer.depth_net.depth_conv.3.aspp2.atrous_conv' in names
    assert 'pre_process_net.layers.0.0.conv1' in names
    assert sum(m.weight_quantizer.bits == 8 for m in layers.values()) == 7


def _step_size_after_one_step(cfg, model):
    """One AdamW step through the config's real OptimWrapper with zero gradients on every step
    size and non-zero ones elsewhere: returns ({name: (before, after)}, the optim wrapper)."""
    import torch
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    named = dict(model.named_parameters())
    for name, p in named.items():
        p.grad = torch.zeros_like(p) if name.endswith('step_size') else torch.full_like(p, 1e-3)
    before = {n: p.detach().clone() for n, p in named.items() if n.endswith('step_size')}
    wrapper.step()
    return {n: (before[n], named[n].detach()) for n in before}, wrapper


@pytest.mark.parametrize('config', ['bevdet/bevdet-tiny_ptqat-w4a8_synth.py',
                                    'bevdepth4d/bevdepth4d-tiny_qat-w4a8_synth.py'])
def test_weight_decay_never_changes_a_step_size(config):
    """Every LSQ step size is in its own parameter group without weight decay (AdamW wd 1e-2 in
    these configs): with a zero gradient it stays exactly where it was, while the weights move."""
    import torch
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'ptqat', config))
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith('step_size'):
                p.fill_(0.05)
    assert cfg.optim_wrapper.optimizer.weight_decay > 0
    steps, wrapper = _step_size_after_one_step(cfg, model)
    assert len(steps) > 80
    for name, (before, after) in steps.items():
        assert torch.equal(before, after), name
    groups = wrapper.optimizer.param_groups
    step_ids = {id(p) for n, p in model.named_parameters() if n.endswith('step_size')}
    step_groups = [g for g in groups if any(id(p) in step_ids for p in g['params'])]
    assert len(step_groups) == len(steps)  # one group each, nothing else in it
    assert all(len(g['params']) == 1 and g['weight_decay'] == 0 and g['lr'] == cfg.optim_wrapper.optimizer.lr
               for g in step_groups)
    weight = dict(model.named_parameters())['img_backbone.conv1.weight']
    assert any(id(weight) == id(p) and g['weight_decay'] > 0 for g in groups for p in g['params'])


@pytest.mark.parametrize('arch, fp_type, head_out', [
    ('bevdet-occ', 'BEVDetOCC', ['occ_head.predicter.2']),
    ('bevdepth4d-occ', 'BEVDepth4DOCC', ['occ_head.predicter.2']),
    ('bevdet-seg', 'BEVDetSeg', ['map_head.classifier.6'])])
@pytest.mark.parametrize('variant, strategy', [
    ('ptq-w4a8', 'none'), ('qat-w4a8', 'all'), ('ptqat-w4a8', 'small'),
    ('ptqat-large-w4a8', 'large')])
def test_dense_task_ptqat_configs_build(arch, fp_type, head_out, variant, strategy):
    cfg, layers = _build(osp.join(ROOT, 'configs', 'ptqat', arch, f'{arch}-tiny_{variant}_synth.py'))
    assert cfg.model.model.type == fp_type
    assert cfg.custom_hooks[0]['strategy'] == strategy
    eight = sorted(n for n, m in layers.items() if m.weight_quantizer.bits == 8)
    assert eight == ['img_backbone.conv1'] + head_out
    head = 'occ_head' if 'occ' in arch else 'map_head'
    assert any(n.startswith(head + '.') for n in layers if n not in head_out)  # head quantized at 4 bits
    assert cfg.val_evaluator.type == ('Occ3DMetric' if 'occ' in arch else 'BEVMapSegMetric')
    r50 = Config.fromfile(osp.join(ROOT, 'configs', 'ptqat', arch, f'{arch}-r50_{variant}_nus.py'))
    assert r50.model.model.type == fp_type and r50.custom_hooks[0]['strategy'] == strategy


QUANT_CONFIGS = [p for p in CONFIGS if f'{osp.sep}ptqat{osp.sep}' in p and f'{osp.sep}_base_{osp.sep}' not in p]


@pytest.mark.parametrize('path', QUANT_CONFIGS, ids=[osp.relpath(p, ROOT) for p in QUANT_CONFIGS])
def test_every_quantized_config_keeps_step_sizes_out_of_weight_decay(path):
    """Every PTQ / QAT / PTQAT config, of every model and task, puts the LSQ step sizes in their own
    parameter groups without weight decay (configs/ptqat/_base_/lsq_optim.py)."""
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'PTQATModel'
    keys = cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {})
    assert keys.get('.step_size', {}).get('decay_mult') == 0.0, path
