"""Collect the results of FP / PTQ / QAT / PTQAT runs into one Markdown table (and JSON).

Each variant is a directory holding ``metrics.json`` (from ``tools/test.py --out``) and, for
trained variants, ``resources.json`` (``ResourceUsageHook``) and ``discrepancy.json``
(``PTQATHook``)::

    python tools/summarize_ptqat.py work_dirs/quickstart --variants fp ptq qat ptqat ptqat-large

Detection runs (NuScenesMetric) get NDS and mAP columns; occupancy (Occ3DMetric, ``occ/mIoU``)
and map segmentation runs (BEVMapSegMetric, ``map/mIoU``) an mIoU column, and their per-class
IoU (%) goes into ``per_class_iou.md`` / ``.json`` beside the table. For detection runs whose
metrics hold the per-class TP errors (NuScenesMetric's), ``nds_breakdown.md`` beside the table
shows each run's mean TP errors, the classes under nuScenes' 10 % recall threshold and the
common-class NDS (``tools/nds_breakdown.py``).
"""
import argparse
import json
import os.path as osp
import sys

LABELS = {'fp': 'FP32', 'ptq': 'PTQ', 'qat': 'QAT (all layers)',
          'ptqat': 'PTQAT (smallest-Dis half)', 'ptqat-large': 'PTQAT-large (largest-Dis half)',
          'ptqat-rel': 'PTQAT, relative Dis (smallest half)'}


def _load(path):
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _metric(metrics, name):
    for k, v in metrics.items():
        if k.endswith(f'/{name}'):
            return v
    raise KeyError(f'no {name!r} in metrics {sorted(metrics)}')


def task_of(metrics) -> str:
    """'det' (NDS / mAP), 'occ' (Occ3DMetric) or 'map' (BEVMapSegMetric)."""
    if any(k.endswith('/NDS') for k in metrics):
        return 'det'
    for task in ('occ', 'map'):
        if f'{task}/mIoU' in metrics:
            return task
    raise KeyError(f'neither NDS nor occ/mIoU nor map/mIoU in metrics {sorted(metrics)}')


def per_class_iou(metrics, task) -> dict:
    """Class name -> IoU in %, in the metric's order."""
    if task == 'occ':  # occ/<class>_IoU, already in %
        return {k[len('occ/'):-len('_IoU')]: v for k, v in metrics.items()
                if k.startswith('occ/') and k.endswith('_IoU')}
    if task == 'map':  # map/<class>/iou@max, a fraction (best threshold per class)
        return {k[len('map/'):-len('/iou@max')]: v * 100 for k, v in metrics.items()
                if k.startswith('map/') and k.endswith('/iou@max') and k != 'map/mean/iou@max'}
    return {}


def collect(work: str, variants):
    rows, task = [], None
    for v in variants:
        d = osp.join(work, v)
        metrics = _load(osp.join(d, 'metrics.json'))
        if metrics is None:
            raise FileNotFoundError(f'{osp.join(d, "metrics.json")} not found (run tools/test.py --out)')
        res = _load(osp.join(d, 'resources.json')) or {}
        dis = _load(osp.join(d, 'discrepancy.json')) or {}
        summary = dis.get('summary', {})
        t = task_of(metrics)
        if task is not None and t != task:
            raise KeyError(f'{v}: {t} metrics among {task} metrics (one task per table)')
        task = t
        scores = (dict(NDS=_metric(metrics, 'NDS'), mAP=_metric(metrics, 'mAP')) if t == 'det' else
                  dict(mIoU=metrics[f'{t}/mIoU'], per_class=per_class_iou(metrics, t)))
        rows.append(dict(
            variant=v, label=LABELS.get(v, v), task=t, **scores,
            layers_trainable=summary.get('num_selected'), layers_quantized=summary.get('num_layers'),
            params_trainable=res.get('params_trainable'), params_total=res.get('params_total'),
            peak_rss_mb=res.get('peak_rss_mb'), sec_per_iter=res.get('sec_per_iter')))
    return rows


def to_markdown(rows) -> str:
    def fmt(x, f):
        return '–' if x is None else f.format(x)
    det = not rows or rows[0]['task'] == 'det'
    scores = '| NDS | mAP |' if det else '| mIoU |'
    out = [f'| method {scores} layers fine-tuned | trainable params | peak memory (MiB) | s / iter |',
           '|---|---|---|---|---|---|' + ('---|' if det else '')]
    for r in rows:
        layers = (f"{r['layers_trainable']} / {r['layers_quantized']}"
                  if r['layers_quantized'] is not None else '–')
        params = (f"{r['params_trainable'] / 1e6:.3f}M / {r['params_total'] / 1e6:.3f}M"
                  if r['params_total'] else '–')
        score = f"{r['NDS']:.4f} | {r['mAP']:.4f}" if det else f"{r['mIoU']:.2f}"
        out.append(f"| {r['label']} | {score} | {layers} | {params} | "
                   f"{fmt(r['peak_rss_mb'], '{:.0f}')} | {fmt(r['sec_per_iter'], '{:.3f}')} |")
    return '\n'.join(out)


def per_class_markdown(rows) -> str:
    """IoU (%) per class (rows) and method (columns); empty for detection."""
    if not rows or rows[0]['task'] == 'det':
        return ''
    classes = list(rows[0]['per_class'])
    out = ['| class | ' + ' | '.join(r['label'] for r in rows) + ' |',
           '|---|' + '---|' * len(rows)]
    for c in classes:
        out.append(f'| {c} | ' + ' | '.join(f"{r['per_class'].get(c, float('nan')):.2f}"
                                               for r in rows) + ' |')
    out.append('| **mIoU** | ' + ' | '.join(f"{r['mIoU']:.2f}" for r in rows) + ' |')
    return '\n'.join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('work_dir')
    p.add_argument('--variants', nargs='+', default=['fp', 'ptq', 'qat', 'ptqat', 'ptqat-large'])
    p.add_argument('--out', help='Markdown output (default: <work_dir>/results.md)')
    a = p.parse_args(argv)
    try:
        rows = collect(a.work_dir, a.variants)
    except (FileNotFoundError, KeyError) as e:
        sys.exit(f'summarize_ptqat: {e}')
    table = to_markdown(rows)
    out = a.out or osp.join(a.work_dir, 'results.md')
    with open(out, 'w') as f:
        f.write(table + '\n')
    with open(osp.splitext(out)[0] + '.json', 'w') as f:
        json.dump(rows, f, indent=1)
    print(table)
    per_class = per_class_markdown(rows)
    if per_class:
        pc = osp.join(osp.dirname(out), 'per_class_iou.md')
        with open(pc, 'w') as f:
            f.write(per_class + '\n')
        with open(osp.splitext(pc)[0] + '.json', 'w') as f:
            json.dump({r['variant']: r['per_class'] for r in rows}, f, indent=1)
        print(f'\nper-class IoU (%), also in {pc}:\n{per_class}')
    if rows and rows[0]['task'] == 'det':
        write_nds_breakdown(a.work_dir, a.variants, osp.join(osp.dirname(out), 'nds_breakdown.md'))


def write_nds_breakdown(work: str, variants, path: str) -> None:
    """``tools/nds_breakdown.py``'s report of the runs into ``path``; says why when it cannot."""
    from nds_breakdown import load_runs, report
    try:
        text = report(load_runs([f"{v}={osp.join(work, v, 'metrics.json')}" for v in variants]))
    except ValueError as e:
        print(f'\n(no NDS breakdown: {e})')
        return
    with open(path, 'w') as f:
        f.write(text)
    print(f'\nNDS breakdown, also in {path}:\n{text}', end='')


if __name__ == '__main__':
    main()
