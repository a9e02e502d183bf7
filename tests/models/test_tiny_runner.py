"""The tiny BEVDet and BEVDepth4D configs end to end through the real mmengine Runner and NuScenesMetric.

train (1 epoch on the session's small synthetic set) -> val -> test, a checkpoint that saves
and reloads, and the full-size R50 config that parses with the right schedule.
"""
import math
import os.path as osp

import pytest
import torch
from fixture_configs import one_epoch_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'bevdet', 'bevdet-tiny_synth.py')
TINY_BEVDEPTH4D = osp.join(REPO, 'configs', 'bevdepth4d', 'bevdepth4d-tiny_synth.py')
R50 = osp.join(REPO, 'configs', 'bevdet', 'bevdet-r50_8xb8-24e_nus.py')
PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes'


def small_cfg(root, work_dir, path=TINY):
    """The tiny config on the fixture data set, 1 short epoch, no worker processes."""
    return one_epoch_cfg(path, root, work_dir)


def _finite_scores(metrics):
    nds, m_ap = metrics[f'{PREFIX}/NDS'], metrics[f'{PREFIX}/mAP']
    assert math.isfinite(nds) and math.isfinite(m_ap)
    assert 0.0 <= nds <= 1.0 and 0.0 <= m_ap <= 1.0
    return nds, m_ap


@pytest.mark.parametrize('path', [TINY, TINY_BEVDEPTH4D], ids=['bevdet', 'bevdepth4d'])
def test_tiny_config_train_val_test_checkpoint(synthetic_root, tmp_path, path):
    import ptqat.plugin  # noqa: F401
    from mmengine.runner import Runner
    torch.set_num_threads(1)
    cfg = small_cfg(synthetic_root[0], tmp_path / 'work', path)
    if path == TINY_BEVDEPTH4D:  # fuse the previous frame from the first iteration
        cfg.custom_hooks = [dict(type='SequentialControlHook', temporal_start_epoch=-1)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    # training ran, the epoch-end validation produced the real NuScenesMetric
    assert runner.iter == 3  # 6 train samples / batch 2
    val_nds = runner.message_hub.get_scalar(f'val/{PREFIX}/NDS').current()
    assert math.isfinite(val_nds)

    test_metrics = runner.test()
    _finite_scores(test_metrics)

    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    saved = {k: v.clone() for k, v in runner.model.state_dict().items()}
    with torch.no_grad():
        for p in runner.model.parameters():
            p.add_(1.0)
    runner.load_checkpoint(ckpt)
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    again = runner.test()
    assert again[f'{PREFIX}/NDS'] == pytest.approx(test_metrics[f'{PREFIX}/NDS'], abs=1e-6)
    assert again[f'{PREFIX}/mAP'] == pytest.approx(test_metrics[f'{PREFIX}/mAP'], abs=1e-6)


def test_r50_config_official_schedule():
    from mmengine.config import Config
    cfg = Config.fromfile(R50)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 2e-4
    assert opt.optimizer.weight_decay == 1e-7 and opt.clip_grad.max_norm == 5
    warm, step = cfg.param_scheduler
    assert (warm.type, warm.end, warm.start_factor) == ('LinearLR', 200, 1e-3)
    assert not warm.by_epoch
    assert step.type == 'MultiStepLR' and step.milestones == [24]
    assert cfg.train_cfg.max_epochs == 24 and cfg.train_dataloader.batch_size == 8
    assert cfg.train_dataloader.dataset.metainfo.version == 'v1.0-trainval'
    assert cfg.val_evaluator.type == 'EmptySafeNuScenesMetric'  # NuScenesMetric subclass
    assert cfg.train_dataloader.dataset.pipeline[0].data_config.input_size == (256, 704)
    assert cfg.model.img_view_transformer.input_size == (256, 704)
    classes = cfg.train_dataloader.dataset.metainfo.classes
    assert classes == cfg.class_names == cfg.model.pts_bbox_head.tasks[0].class_names


def test_tiny_config_consistent_with_model():
    from mmengine.config import Config
    cfg = Config.fromfile(TINY)
    size = tuple(cfg.model.img_view_transformer.input_size)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        prep = cfg[loader].dataset.pipeline[0]
        assert prep.type == 'PrepareImageInputs'
        assert tuple(prep.data_config.input_size) == size
        assert prep.data_config.cams[0] == 'CAM_FRONT_LEFT'
    assert cfg.train_dataloader.dataset.pipeline[0].is_train
    assert not cfg.val_dataloader.dataset.pipeline[0].is_train
    assert cfg.train_dataloader.dataset.metainfo.classes == cfg.class_names
    assert cfg.val_evaluator.ann_file.startswith(cfg.val_dataloader.dataset.data_root)
