"""The tiny BEVFormer config end to end through the real mmengine Runner and NuScenesMetric:
train (queue of 3 frames) -> val -> test on the session's small synthetic set."""
import math
import os.path as osp

import torch
from fixture_configs import one_epoch_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'bevformer', 'bevformer-tiny_synth.py')
PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes'


def small_cfg(root, work_dir):
    """The tiny config on the fixture data set (its own batch size), 1 epoch, no worker processes."""
    return one_epoch_cfg(TINY, root, work_dir, batch_size=None)


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
