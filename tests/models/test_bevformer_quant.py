"""BEVFormer quantization: the quantized mmcv DCNv2, what the BEVFormer PTQAT configs
quantize, and PTQAT end to end (calibrate -> select -> fine-tune -> save -> tools/test.py
reload -> identical outputs) on the tiny config through the real Runner and NuScenesMetric."""
import json
import os.path as osp

import pytest
import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PTQAT_TINY = osp.join(ROOT, 'configs', 'ptqat', 'bevformer', 'bevformer-tiny_ptqat-w4a8_synth.py')
FP_TINY = osp.join(ROOT, 'configs', 'bevformer', 'bevformer-tiny_synth.py')


def _dcn(seed=0):
    from mmcv.ops import ModulatedDeformConv2dPack
    torch.manual_seed(seed)
    m = nn.Sequential(ModulatedDeformConv2dPack(16, 32, 3, padding=1, bias=False))
    with torch.no_grad():  # non-trivial offsets and masks (mmcv initialises them to zero)
        m[0].conv_offset.weight.normal_(0, 0.05)
        m[0].conv_offset.bias.normal_(0, 0.5)
    return m


def _quant_error(bits):
    import ptqat.engine  # noqa: F401  (registers the quantized mmcv layers)
    from ptqat.quant import calibrate, quantize_model
    m = _dcn()
    x = torch.randn(4, 16, 12, 20)
    with torch.no_grad():
        ref = m(x)
    names = quantize_model(m, dict(w_bits=bits, a_bits=bits))
    calibrate(m, [x], lambda mod, b: mod(b))
    with torch.no_grad():
        out = m(x)
    return names, m, float((out - ref).norm() / ref.norm())


def test_quantized_dcnv2_8bit_close_to_float():
    from ptqat.engine.quant_layers_mmcv import QuantModulatedDeformConv2dPack
    names, m, err8 = _quant_error(8)
    assert sorted(names) == ['0', '0.conv_offset']
    assert isinstance(m[0], QuantModulatedDeformConv2dPack)
    assert m[0].weight_quantizer.per_channel and m[0].weight_quantizer.step_size.numel() == 32
    assert m[0].input_quantizer.bits == 8
    assert err8 < 0.03
    _, _, err4 = _quant_error(4)
    assert err4 > 3 * err8  # 4-bit weights are visibly coarser: the quantizers act


def test_quantized_dcnv2_keeps_keys_and_trains():
    import ptqat.engine  # noqa: F401
    from ptqat.quant import quantize_model
    m = _dcn()
    keys = set(m.state_dict())
    quantize_model(m, dict(w_bits=4, a_bits=8))
    qkeys = set(m.state_dict())
    assert keys <= qkeys  # a float checkpoint loads into the quantized layer
    assert {k for k in qkeys - keys if not k.endswith('ptqat_trainable')} <= {
        k for k in qkeys if 'quantizer' in k}
    for mod in m.modules():  # initialise the step sizes without a calibration pass
        if hasattr(mod, 'init_weight_quantizers'):
            mod.init_weight_quantizers()
    x = torch.randn(2, 16, 8, 8)
    for q in (m[0].input_quantizer, m[0].conv_offset.input_quantizer):
        q.init_step_size(x)
    m(x).square().sum().backward()
    assert m[0].weight.grad.abs().sum() > 0
    assert m[0].weight_quantizer.step_size.grad.abs().sum() > 0


def _build(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from ptqat.quant import quantized_layers
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    return cfg, model, dict(quantized_layers(model))


def _float_layers(model):
    from mmcv.ops import ModulatedDeformConv2dPack
    kinds = (nn.Conv2d, nn.Linear, nn.MultiheadAttention, ModulatedDeformConv2dPack)
    return {n for n, m in model.named_modules() if isinstance(m, kinds)}


def test_base_ptqat_config_quantizes_every_matmul_layer():
    from mmcv.ops import ModulatedDeformConv2dPack
    cfg, model, layers = _build(osp.join(ROOT, 'configs', 'ptqat', 'bevformer',
                                         'bevformer-base_ptqat-w4a8_nus.py'))
    inner = model.model if hasattr(model, 'model') else model
    prefix = 'model.' if inner is not model else ''
    names = {n[len(prefix):] if n.startswith(prefix) else n for n in layers}
    assert names == _float_layers(inner)  # every Conv2d, Linear, MHA and DCNv2
    dcn = [n for n, m in layers.items() if isinstance(m, ModulatedDeformConv2dPack)]
    assert len(dcn) == 26
    assert not any(isinstance(m, nn.Embedding) and hasattr(m, 'weight_quantizer')
                   for m in inner.modules())  # embeddings stay float
    eight = {n for n, m in layers.items() if m.weight_quantizer.bits == 8}
    # first conv + 6 cls + 6 reg outputs + sampling_offsets of 6 TSA, 6 SCA, 6 decoder
    assert len(eight) == 1 + 6 + 6 + 18
    assert all(n.endswith('sampling_offsets') for n in eight if 'transformer' in n)


@pytest.mark.parametrize('variant, strategy, w_bits, a_bits', [
    ('ptq-w4a8', 'none', 4, 8), ('qat-w4a8', 'all', 4, 8), ('ptqat-w4a8', 'small', 4, 8),
    ('ptqat-large-w4a8', 'large', 4, 8), ('ptqat-w4', 'small', 4, None),
    ('ptqat-w8a8', 'small', 8, 8)])
def test_tiny_ptqat_configs_build(variant, strategy, w_bits, a_bits):
    cfg, _, layers = _build(osp.join(ROOT, 'configs', 'ptqat', 'bevformer',
                                     f'bevformer-tiny_{variant}_synth.py'))
    assert cfg.model.model.type == 'BEVFormer'
    assert cfg.custom_hooks[0]['strategy'] == strategy
    bits = {m.weight_quantizer.bits for m in layers.values()}
    assert bits == ({w_bits, 8} if w_bits != 8 else {8})
    has_act = {m.input_quantizer is not None and m.input_quantizer.enabled
               for m in layers.values()}
    assert has_act == {a_bits is not None}


# --------------------------------------------------------------------------- end to end
def _point_at(cfg, data_root, work_dir):
    data_root = data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].dataset.metainfo.version = 'v1.0-mini'
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    for ev in ('val_evaluator', 'test_evaluator'):
        cfg[ev].data_root = data_root
        cfg[ev].ann_file = data_root + 'nuscenes_infos_val.pkl'
    cfg.train_cfg = dict(by_epoch=False, max_iters=2, val_interval=10**6)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.custom_hooks[0].calib_batches = 2
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(work_dir)
    return cfg


def _predictions(runner):
    model = runner.model
    model.eval()
    out = []
    with torch.no_grad():
        for batch in runner.test_dataloader:  # the whole (3-frame) val scene, in order
            for s in model.test_step(batch):
                p = s.pred_instances_3d
                out.append((p.bboxes_3d.tensor.clone(), p.scores_3d.clone(),
                            p.labels_3d.clone()))
    return out


@pytest.mark.slow  # ~2 min on 2 busy cores (+ the session's synthetic set)
def test_ptqat_train_save_reload_identical(synthetic_root, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from tool_loader import load_tool

    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from ptqat.quant import trainable_layers
    torch.set_num_threads(1)
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    fp = MODELS.build(Config.fromfile(FP_TINY).model)
    fp_path = str(tmp_path / 'fp.pth')
    torch.save(dict(meta=dict(), state_dict=fp.state_dict()), fp_path)

    cfg = _point_at(Config.fromfile(PTQAT_TINY), synthetic_root[0], tmp_path / 'ptqat')
    cfg.load_from = fp_path
    runner = Runner.from_cfg(cfg)
    runner.train()
    work = tmp_path / 'ptqat'
    report = json.loads((work / 'discrepancy.json').read_text())
    selected = [r['name'] for r in report['layers'] if r['selected']]
    n = report['summary']['num_layers']
    assert len(selected) in (n // 2, (n + 1) // 2)  # ratio 0.5
    ckpt = work / 'iter_2.pth'
    trained = _predictions(runner)

    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    metrics = load_tool('test').main([str(cfg_file), str(ckpt), '--work-dir',
                                      str(tmp_path / 'test'), '--out',
                                      str(tmp_path / 'metrics.json')])
    assert 0.0 <= metrics['NuScenes metric/pred_instances_3d_NuScenes/NDS'] <= 1.0

    cfg2 = _point_at(Config.fromfile(PTQAT_TINY), synthetic_root[0], tmp_path / 'reload')
    cfg2.load_from = str(ckpt)
    runner2 = Runner.from_cfg(cfg2)
    runner2.load_or_resume()
    assert trainable_layers(runner2.model) == selected
    reloaded = _predictions(runner2)
    assert len(reloaded) == len(trained) == 3
    for a, b in zip(trained, reloaded):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
