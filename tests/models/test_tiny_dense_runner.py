"""The tiny occupancy and map segmentation configs end to end through the real mmengine Runner:
train (1 epoch on the session's small synthetic set, with BEV flips) -> val -> test with
Occ3DMetric / BEVMapSegMetric, a checkpoint that saves and reloads to the same metrics; the
full-size configs build."""
import math
import os
import os.path as osp

import pytest
import torch
from fixture_configs import one_epoch_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs')
TINY = {
    'bevdet-occ': (osp.join(CFG, 'bevdet-occ', 'bevdet-occ-tiny_synth.py'), 'occ/mIoU'),
    'bevdepth4d-occ': (osp.join(CFG, 'bevdepth4d-occ', 'bevdepth4d-occ-tiny_synth.py'), 'occ/mIoU'),
    'bevdet-seg': (osp.join(CFG, 'bevdet-seg', 'bevdet-seg-tiny_synth.py'), 'map/mIoU'),
    'bevformer-occ': (osp.join(CFG, 'bevformer-occ', 'bevformer-occ-tiny_synth.py'), 'occ/mIoU'),
    'bevformer-seg': (osp.join(CFG, 'bevformer-seg', 'bevformer-seg-tiny_synth.py'), 'map/mIoU'),
}
DENSE_GT = ('LoadOccGTFromFile', 'LoadBEVSegmentation')


def dense_small_cfg(root, work_dir, path):
    """The tiny config on the fixture data set: 1 epoch, batch 2 (BEVFormer: its own, the test
    cache needs 1), no worker processes."""
    cfg = one_epoch_cfg(path, root, work_dir, evaluators=False, root_keyed_transforms=DENSE_GT,
                        batch_size=None if 'bevformer' in osp.basename(path) else 2)
    if 'SequentialControlHook' in str(cfg.get('custom_hooks', [])):
        cfg.custom_hooks = [dict(type='SequentialControlHook', temporal_start_epoch=-1)]
    return cfg


@pytest.mark.parametrize('name', [
    'bevdet-occ', pytest.param('bevdepth4d-occ', marks=pytest.mark.slow), 'bevdet-seg',
    pytest.param('bevformer-occ', marks=pytest.mark.slow),
    pytest.param('bevformer-seg', marks=pytest.mark.slow)])
def test_tiny_dense_config_train_val_test_checkpoint(synthetic_root, tmp_path, name):
    import ptqat.plugin  # noqa: F401
    from mmengine.runner import Runner
    torch.set_num_threads(1)
    path, key = TINY[name]
    cfg = dense_small_cfg(synthetic_root[0], tmp_path / 'work', path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3  # 6 train samples / batch 2
    assert math.isfinite(runner.message_hub.get_scalar(f'val/{key}').current())
    metrics = runner.test()
    assert 0.0 <= metrics[key] <= 100.0
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    with torch.no_grad():
        for p in runner.model.parameters():
            p.add_(1.0)
    runner.load_checkpoint(ckpt)
    again = runner.test()
    assert again[key] == pytest.approx(metrics[key], abs=1e-9)


@pytest.mark.parametrize('name', ['bevdet-occ', 'bevdepth4d-occ', 'bevdet-seg'])
def test_full_size_dense_configs_build(name):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    folder = osp.join(CFG, name)
    path = [osp.join(folder, f) for f in sorted(os.listdir(folder)) if 'r50' in f][0]
    cfg = Config.fromfile(path)
    cfg.model.img_backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.pts_bbox_head is None
    head = model.occ_head if 'occ' in name else model.map_head
    assert head is not None
    if 'occ' in name:  # FlashOcc M1: 200 x 200 BEV at 0.4 m straight into the head
        assert [int(v) for v in model.img_view_transformer.grid_size[:2]] == [200, 200]
