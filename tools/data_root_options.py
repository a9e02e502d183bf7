"""The ``--cfg-options`` that point a config's data at another root, one ``key=value`` a line.

    python tools/data_root_options.py CONFIG DATA_ROOT

Covers every dataloader's ``dataset.data_root``, every top-level pipeline transform that has a
``data_root`` of its own (the Occ3D / map ground-truth loaders, the camera-sweep loader) and an
evaluator's ``data_root`` / ``ann_file`` (NuScenesMetric; the ann file keeps its file name).
``tools/quickstart.sh`` uses it for a ``PTQAT_DATA`` other than the config's own root. The
config is only parsed (mmengine ``Config.fromfile``), nothing is built.
"""
import argparse
import os.path as osp
import sys

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


def data_root_options(cfg, data_root: str) -> list:
    """``key=value`` strings setting every data root of ``cfg`` (an mmengine Config) to
    ``data_root`` (a trailing ``/`` is added)."""
    root = data_root.rstrip('/') + '/'
    opts = []
    for name in LOADERS:
        loader = cfg.get(name, None)
        if not loader:
            continue
        depth, ds = 0, loader.get('dataset', None)
        # a wrapper (CBGSDataset, RepeatDataset) holds the real dataset one level down
        while isinstance(ds, dict) and 'data_root' not in ds and isinstance(ds.get('dataset'), dict):
            depth, ds = depth + 1, ds['dataset']
        if not isinstance(ds, dict) or 'data_root' not in ds:
            raise KeyError(f'{name}: no dataset with a data_root to point at {data_root!r}')
        prefix = f'{name}.dataset' + '.dataset' * depth
        opts.append(f'{prefix}.data_root={root}')
        for i, t in enumerate(ds.get('pipeline', None) or []):
            if isinstance(t, dict) and 'data_root' in t:
                opts.append(f'{prefix}.pipeline.{i}.data_root={root}')
    for name in EVALUATORS:
        ev = cfg.get(name, None)
        if not isinstance(ev, dict):
            continue
        if 'data_root' in ev:
            opts.append(f'{name}.data_root={root}')
        if 'ann_file' in ev:
            opts.append(f'{name}.ann_file={root}{osp.basename(ev["ann_file"])}')
    return opts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('data_root')
    a = p.parse_args(argv)
    from mmengine.config import Config
    if not osp.isfile(a.config):
        sys.exit(f'data_root_options: no config file {a.config}')
    try:
        opts = data_root_options(Config.fromfile(a.config), a.data_root)
    except KeyError as e:
        sys.exit(f'data_root_options: {a.config}: {e.args[0]}')
    print('\n'.join(opts))


if __name__ == '__main__':
    main()
