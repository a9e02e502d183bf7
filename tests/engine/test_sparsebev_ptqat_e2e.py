"""PTQAT end to end on SparseBEV-tiny with synthetic nuScenes (the real configs, Runner,
NuScenesMetric): calibrate (the shared decoder layer over its six calls) -> select -> a few
QAT iterations -> save -> tools/test.py reload -> identical predictions."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from test_ptqat_e2e import _point_at, _predictions
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PTQAT = osp.join(ROOT, 'configs/ptqat/sparsebev/sparsebev-tiny_ptqat-w4a8_synth.py')
FP = osp.join(ROOT, 'configs/sparsebev/sparsebev-tiny_synth.py')
SHARED = 'pts_bbox_head.transformer.decoder.decoder_layer.'


def _cfg(data_root, work_dir):
    cfg = _point_at(Config.fromfile(PTQAT), data_root, work_dir)
    root = data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.pipeline[0].data_root = root
        cfg[loader].dataset.metainfo.version = 'v1.0-mini'  # the fixture set
    # random init scores ~0.01: keep every box so that the comparison is not vacuous
    cfg.model.model.pts_bbox_head.bbox_coder.score_threshold = None
    return cfg


@pytest.fixture(scope='module')
def fp_checkpoint(tmp_path_factory):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(FP).model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('fp') / 'fp.pth')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


@pytest.mark.slow
def test_sparsebev_ptqat_train_save_reload_identical(synthetic_root, fp_checkpoint, tmp_path):
    torch.set_num_threads(1)
    cfg = _cfg(synthetic_root[0], tmp_path / 'ptqat')
    cfg.load_from = fp_checkpoint
    runner = Runner.from_cfg(cfg)
    runner.train()
    work = tmp_path / 'ptqat'
    report = json.loads((work / 'discrepancy.json').read_text())
    names = [r['name'] for r in report['layers']]
    selected = [r['name'] for r in report['layers'] if r['selected']]
    assert len(selected) == round(0.5 * report['summary']['num_layers'])
    shared = [n for n in names if SHARED in n]
    assert any(n.endswith('mixing.channel_matmul') for n in shared)
    assert len(shared) == len(set(shared))  # one entry (one decision) per shared layer
    ckpt = work / 'iter_3.pth'
    trained = _predictions(runner)
    assert trained and trained[0][0].shape[0] > 0

    tool = load_tool('test')
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    metrics = tool.main([str(cfg_file), str(ckpt), '--work-dir', str(tmp_path / 'test')])
    assert 0.0 <= metrics['NuScenes metric/pred_instances_3d_NuScenes/NDS'] <= 1.0

    cfg2 = _cfg(synthetic_root[0], tmp_path / 'reload')
    cfg2.load_from = str(ckpt)
    runner2 = Runner.from_cfg(cfg2)
    runner2.load_or_resume()
    from ptqat.quant import trainable_layers
    assert trainable_layers(runner2.model) == selected
    reloaded = _predictions(runner2)
    assert len(reloaded) == len(trained)
    for a, b in zip(trained, reloaded):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
