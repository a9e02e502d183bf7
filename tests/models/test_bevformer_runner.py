"""The tiny BEVFormer config end to end through the real mmengine Runner and NuScenesMetric:
train (queue of 3 frames) -> val -> test on the session's small synthetic set."""
import math
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'bevformer', 'bevformer-tiny_synth.py')
PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes'


def small_cfg(root, work_dir):
    from mmengine.config import Config
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(work_dir)
    cfg.load_from = None
    root = root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[loader]
        dl.update(num_workers=0, persistent_workers=False)
        dl.dataset.data_root = root
        dl.dataset.metainfo.version = 'v1.0-mini'
    for ev in ('val_evaluator', 'test_evaluator'):
        cfg[ev].update(data_root=root, ann_file=root + 'nuscenes_infos_val.pkl')
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    return cfg


def test_tiny_bevformer_train_val_test(synthetic_root, tmp_path):
    import ptqat.plugin  # noqa: F401
    from mmengine.runner import Runner
    torch.set_num_threads(1)
    cfg = small_cfg(synthetic_root[0], tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3  # 6 train samples / batch 2
    for split in ('val', 'test'):
        metrics = runner.test() if split == 'test' else runner.val()
        nds, m_ap = metrics[f'{PREFIX}/NDS'], metrics[f'{PREFIX}/mAP']
        assert math.isfinite(nds) and 0.0 <= nds <= 1.0 and 0.0 <= m_ap <= 1.0
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))
