"""Check a nuScenes(-format) data root end to end: devkit load, info files, and the real metric
on ground-truth predictions (perfect and perturbed). Writes a Markdown table.

Example::

    python tools/check_dataset.py data/nuscenes_synth --version v1.0-mini --out work_dirs/dataset_check.md
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

from ptqat.datasets.nuscenes_infos import check_data_root
from ptqat.evaluation.ground_truth_check import (METRIC_PREFIX, evaluate_predictions,
                                                 ground_truth_predictions)

CASES = (('ground truth', 0.0, 0.0), ('σ = 0.3, 20 % dropped', 0.3, 0.2),
         ('σ = 1.0, 20 % dropped', 1.0, 0.2))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('root')
    p.add_argument('--version', default='v1.0-mini')
    p.add_argument('--ann-file', default='nuscenes_infos_val.pkl', help='relative to root')
    p.add_argument('--out', default=None, help='Markdown file for the table')
    a = p.parse_args(argv)
    try:
        check_data_root(a.root, a.version)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'check_dataset: {e}')
    if not osp.isfile(osp.join(a.root, a.ann_file)):
        sys.exit(f'check_dataset: {osp.join(a.root, a.ann_file)!r} not found; run tools/create_data.py first')
    rows = ['| predictions | NDS | mAP | mATE | mASE | mAOE | mAVE | mAAE |', '|---|---|---|---|---|---|---|---|']
    with tempfile.TemporaryDirectory() as tmp:
        for name, noise, drop in CASES:
            ds, preds = ground_truth_predictions(a.root, a.ann_file, a.version, noise, drop)
            m = evaluate_predictions(a.root, a.ann_file, ds, preds, osp.join(tmp, str(noise)))
            vals = [m[f'{METRIC_PREFIX}/{k}'] for k in ('NDS', 'mAP', 'mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE')]
            rows.append(f'| {name} | ' + ' | '.join(f'{v:.4f}' for v in vals) + ' |')
    table = '\n'.join(rows)
    print(f'\nNuScenesMetric on {a.root} ({a.version}, {len(ds)} val samples):\n{table}')
    if a.out:
        os.makedirs(osp.dirname(osp.abspath(a.out)), exist_ok=True)
        with open(a.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
