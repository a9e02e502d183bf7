"""The tiny SparseBEV config end to end through the real mmengine Runner and NuScenesMetric:
train (1 epoch on the session's small synthetic set) -> val -> test, checkpoint reload; the
full-size config's schedule and the frame counts of both configs."""
import math
import os.path as osp

import torch
from fixture_configs import one_epoch_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(REPO, 'configs', 'sparsebev', 'sparsebev-tiny_synth.py')
R50 = osp.join(REPO, 'configs', 'sparsebev', 'sparsebev-r50_nuimg_704x256_nus.py')
PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes'


def small_cfg(root, work_dir, path=TINY):
    """The tiny config on the fixture data set (v1.0-mini), 1 epoch, no worker processes."""
    # camera sweeps are read relative to the root
    return one_epoch_cfg(path, root, work_dir, root_keyed_transforms=('LoadMultiViewImageFromMultiSweeps',))


def _finite(metrics):
    nds, m_ap = metrics[f'{PREFIX}/NDS'], metrics[f'{PREFIX}/mAP']
    assert math.isfinite(nds) and math.isfinite(m_ap) and 0 <= nds <= 1 and 0 <= m_ap <= 1


def test_tiny_sparsebev_train_val_test_checkpoint(synthetic_root, tmp_path):
    import ptqat.plugin  # noqa: F401
    from mmengine.runner import Runner
    torch.set_num_threads(1)
    cfg = small_cfg(synthetic_root[0], tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar(f'val/{PREFIX}/NDS').current())
    assert runner.message_hub.get_scalar('train/loss_cls_dn').current() > 0  # denoising ran
    _finite(runner.test())
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    saved = {k: v.clone() for k, v in runner.model.state_dict().items()}
    with torch.no_grad():
        for p in runner.model.parameters():
            p.add_(1.0)
    runner.load_checkpoint(ckpt)
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_configs_frames_and_schedule():
    from mmengine.config import Config
    for path in (TINY, R50):
        cfg = Config.fromfile(path)
        frames = cfg.model.pts_bbox_head.transformer.num_frames
        for loader in ('train_dataloader', 'test_dataloader'):
            load = cfg[loader].dataset.pipeline[0]
            assert load.type == 'LoadMultiViewImageFromMultiSweeps'
            assert load.sweeps_num + 1 == frames, (path, loader)
            assert load.data_root == cfg[loader].dataset.data_root
    r50 = Config.fromfile(R50)
    assert r50.train_cfg.max_epochs == 24 and r50.optim_wrapper.optimizer.lr == 2e-4
    assert r50.optim_wrapper.paramwise_cfg.custom_keys['sampling_offset'].lr_mult == 0.1
    assert r50.model.pts_bbox_head.transformer.num_frames == 8
