"""PTQAT end to end on BEVDet-tiny and BEVDepth4D-tiny with synthetic nuScenes: the real
configs, Runner, metric.

calibrate -> select -> a few QAT iterations -> save -> tools/test.py reload -> identical
predictions and the same metrics.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from fixture_configs import point_at_fixture
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# (PTQAT config, its FP config)
MODELS_UNDER_TEST = {
    'bevdet': ('configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py',
               'configs/bevdet/bevdet-tiny_synth.py'),
    'bevdepth4d': ('configs/ptqat/bevdepth4d/bevdepth4d-tiny_ptqat-w4a8_synth.py',
                   'configs/bevdepth4d/bevdepth4d-tiny_synth.py'),
}


def _point_at(cfg, data_root, work_dir):
    """The config's data, metric and schedule pointed at the small fixture set."""
    for ev in ('val_evaluator', 'test_evaluator'):
        assert cfg[ev].type == 'EmptySafeNuScenesMetric'  # a random-init model detects nothing
    point_at_fixture(cfg, data_root)
    cfg.train_cfg = dict(by_epoch=False, max_iters=3, val_interval=10 ** 6)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=3)
    cfg.custom_hooks[0].calib_batches = 2
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module', params=sorted(MODELS_UNDER_TEST))
def configs(request):
    """(PTQAT config path, FP config path) of one tiny model."""
    return tuple(osp.join(ROOT, p) for p in MODELS_UNDER_TEST[request.param])


@pytest.fixture(scope='module')
def fp_checkpoint(configs, tmp_path_factory):
    """An FP checkpoint of the tiny model (random init: the flow, not the accuracy, is tested)."""
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(configs[1]).model)
    path = str(tmp_path_factory.mktemp('fp') / 'fp.pth')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


def _predictions(runner, n=2):
    model = runner.model
    model.eval()
    out = []
    with torch.no_grad():
        for i, batch in enumerate(runner.test_dataloader):
            if i == n:
                break
            for s in model.test_step(batch):
                p = s.pred_instances_3d
                out.append((p.bboxes_3d.tensor.clone(), p.scores_3d.clone(), p.labels_3d.clone()))
    return out


def test_ptqat_train_save_reload_identical(synthetic_root, configs, fp_checkpoint, tmp_path):
    cfg = _point_at(Config.fromfile(configs[0]), synthetic_root[0], tmp_path / 'ptqat')
    cfg.load_from = fp_checkpoint
    runner = Runner.from_cfg(cfg)
    runner.train()
    work = tmp_path / 'ptqat'
    report = json.loads((work / 'discrepancy.json').read_text())
    selected = [r['name'] for r in report['layers'] if r['selected']]
    n = report['summary']['num_layers']
    assert len(selected) == round(0.5 * n) and (work / 'discrepancy.png').is_file()
    ckpt = work / 'iter_3.pth'
    assert ckpt.is_file()
    trained = _predictions(runner)

    tool = load_tool('test')
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    metrics = tool.main([str(cfg_file), str(ckpt), '--work-dir', str(tmp_path / 'test'),
                         '--out', str(tmp_path / 'metrics.json')])
    assert 0.0 <= metrics['NuScenes metric/pred_instances_3d_NuScenes/NDS'] <= 1.0
    assert json.loads((tmp_path / 'metrics.json').read_text()).keys() == metrics.keys()

    # a fresh runner from the checkpoint: no recalibration, the same selection and predictions
    cfg2 = _point_at(Config.fromfile(configs[0]), synthetic_root[0], tmp_path / 'reload')
    cfg2.load_from = str(ckpt)
    runner2 = Runner.from_cfg(cfg2)
    runner2.load_or_resume()
    from ptqat.quant import trainable_layers
    assert trainable_layers(runner2.model) == selected
    reloaded = _predictions(runner2)
    assert len(reloaded) == len(trained) > 0
    for a, b in zip(trained, reloaded):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
