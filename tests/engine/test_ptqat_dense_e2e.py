"""PTQAT end to end on the tiny occupancy (BEVDet-occ) and map segmentation (BEVDet-seg) models
with synthetic nuScenes: the real configs, Runner, Occ3DMetric / BEVMapSegMetric.

calibrate -> select -> a few QAT iterations -> save -> tools/test.py reload (reports the mIoU)
-> a fresh runner from the checkpoint gives identical predictions.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# (PTQAT config, its FP config, metric key, prediction field)
MODELS_UNDER_TEST = {
    'bevdet-occ': ('configs/ptqat/bevdet-occ/bevdet-occ-tiny_ptqat-w4a8_synth.py',
                   'configs/bevdet-occ/bevdet-occ-tiny_synth.py', 'occ/mIoU', 'pred_occ'),
    'bevdet-seg': ('configs/ptqat/bevdet-seg/bevdet-seg-tiny_ptqat-w4a8_synth.py',
                   'configs/bevdet-seg/bevdet-seg-tiny_synth.py', 'map/mIoU', 'pred_masks_bev'),
}


def _point_at(cfg, data_root, work_dir):
    """The config's data and schedule pointed at the small fixture set."""
    data_root = data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[loader]
        dl.update(num_workers=0, persistent_workers=False, batch_size=2)
        dl.dataset.data_root = data_root
        dl.dataset.metainfo.version = 'v1.0-mini'
        for t in dl.dataset.pipeline:
            if t['type'] in ('LoadOccGTFromFile', 'LoadBEVSegmentation'):
                t['data_root'] = data_root
    cfg.train_cfg = dict(by_epoch=False, max_iters=3, val_interval=10 ** 6)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=3)
    cfg.custom_hooks[0].calib_batches = 2
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module', params=sorted(MODELS_UNDER_TEST))
def model_under_test(request):
    return MODELS_UNDER_TEST[request.param]


@pytest.fixture(scope='module')
def fp_checkpoint(model_under_test, tmp_path_factory):
    """An FP checkpoint of the tiny model (random init: the flow, not the accuracy, is tested)."""
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(ROOT, model_under_test[1])).model)
    path = str(tmp_path_factory.mktemp('fp') / 'fp.pth')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


def _predictions(runner, field, n=2):
    model = runner.model
    model.eval()
    out = []
    with torch.no_grad():
        for i, batch in enumerate(runner.test_dataloader):
            if i == n:
                break
            out += [getattr(s, field).clone() for s in model.test_step(batch)]
    return out


@pytest.mark.slow  # ~1 min per model on 2 shared cores
def test_dense_ptqat_train_save_reload_identical(synthetic_root, model_under_test, fp_checkpoint,
                                                 tmp_path):
    cfg_path, _, key, field = model_under_test
    cfg = _point_at(Config.fromfile(osp.join(ROOT, cfg_path)), synthetic_root[0], tmp_path / 'ptqat')
    cfg.load_from = fp_checkpoint
    runner = Runner.from_cfg(cfg)
    runner.train()
    work = tmp_path / 'ptqat'
    report = json.loads((work / 'discrepancy.json').read_text())
    selected = [r['name'] for r in report['layers'] if r['selected']]
    assert len(selected) == round(0.5 * report['summary']['num_layers'])
    head = 'occ_head.' if 'occ' in key else 'map_head.'
    assert any(r['name'].startswith(head) for r in report['layers'])  # the task head is ranked
    ckpt = work / 'iter_3.pth'
    assert ckpt.is_file()
    trained = _predictions(runner, field)

    tool = load_tool('test')
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    metrics = tool.main([str(cfg_file), str(ckpt), '--work-dir', str(tmp_path / 'test'),
                         '--out', str(tmp_path / 'metrics.json')])
    assert 0.0 <= metrics[key] <= 100.0

    cfg2 = _point_at(Config.fromfile(osp.join(ROOT, cfg_path)), synthetic_root[0], tmp_path / 'reload')
    cfg2.load_from = str(ckpt)
    runner2 = Runner.from_cfg(cfg2)
    runner2.load_or_resume()
    from ptqat.quant import trainable_layers
    assert trainable_layers(runner2.model) == selected
    reloaded = _predictions(runner2, field)
    assert len(reloaded) == len(trained) > 0
    for a, b in zip(trained, reloaded):
        assert torch.equal(a, b)
