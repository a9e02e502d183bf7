"""Configs pointed at the small synthetic fixture set (``tests/conftest.py::synthetic_root``,
v1.0-mini): one place for what every Runner test changes in a real config."""
from __future__ import annotations

from typing import Iterable, Optional

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


def point_at_fixture(cfg, data_root: str, *, batch_size: Optional[int] = 2, evaluators: bool = True,
                     root_keyed_transforms: Iterable[str] = ()) -> str:
    """Point the config's loaders (and, with ``evaluators``, its NuScenes metric) at the fixture
    set, in the main process; ``batch_size=None`` keeps the config's. Transforms whose type is in
    ``root_keyed_transforms`` get the root too (they read files relative to it). Returns the
    root with a trailing '/'."""
    root = data_root.rstrip('/') + '/'
    keyed = set(root_keyed_transforms)
    for loader in LOADERS:
        dl = cfg[loader]
        dl.update(num_workers=0, persistent_workers=False)
        if batch_size is not None:
            dl.batch_size = batch_size
        dl.dataset.data_root = root
        dl.dataset.metainfo = dict(dl.dataset.get('metainfo') or {}, version='v1.0-mini')  # checked by the metric
        for t in dl.dataset.pipeline:
            if t['type'] in keyed:
                t['data_root'] = root
    if evaluators:
        for ev in EVALUATORS:
            cfg[ev].update(data_root=root, ann_file=root + 'nuscenes_infos_val.pkl')
    return root


def one_epoch_cfg(path: str, data_root: str, work_dir, **point_kw):
    """The config at ``path`` from random init on the fixture set: 1 epoch with validation, a
    constant lr, a checkpoint, seed 0 (the flow is tested, not the accuracy)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.work_dir = str(work_dir)
    cfg.load_from = None
    point_at_fixture(cfg, data_root, **point_kw)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    return cfg
