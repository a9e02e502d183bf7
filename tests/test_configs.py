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
    assert cfg.model.type in ('BEVDet', 'PTQATModel')
    assert 'ptqat.plugin' in cfg.custom_imports.imports


def _build(path):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from ptqat.quant import quantized_layers
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    return cfg, dict(quantized_layers(model))


@pytest.mark.parametrize('name, strategy, a_bits', [
    ('bevdet-tiny_ptq-w4a8_synth.py', 'none', 8), ('bevdet-tiny_qat-w4a8_synth.py', 'all', 8),
    ('bevdet-tiny_ptqat-w4a8_synth.py', 'small', 8),
    ('bevdet-tiny_ptqat-large-w4a8_synth.py', 'large', 8),
    ('bevdet-tiny_ptqat-w4_synth.py', 'small', None)])
def test_tiny_ptqat_configs_build(name, strategy, a_bits):
    cfg, layers = _build(osp.join(ROOT, 'configs', 'ptqat', 'bevdet', name))
    assert [h['type'] for h in cfg.custom_hooks] == ['PTQATHook', 'ResourceUsageHook']
    assert cfg.custom_hooks[0]['strategy'] == strategy
    assert len(layers) > 40
    bits = {n: m.weight_quantizer.bits for n, m in layers.items()}
    eight = sorted(n for n, b in bits.items() if b == 8)
    assert eight == ['img_backbone.conv1'] + [
        f'pts_bbox_head.task_heads.0.{h}.1' for h in ('dim', 'heatmap', 'height', 'reg', 'rot', 'vel')]
    assert set(bits.values()) == {4, 8}
    has_act = {m.input_quantizer is not None and m.input_quantizer.enabled for m in layers.values()}
    assert has_act == {a_bits is not None}


def test_r50_ptqat_config_builds():
    cfg, layers = _build(osp.join(ROOT, 'configs', 'ptqat', 'bevdet', 'bevdet-r50_ptqat-w4a8_nus.py'))
    assert len(layers) == 89  # every Conv2d of BEVDet-R50
    assert sum(m.weight_quantizer.bits == 8 for m in layers.values()) == 7
