"""Collect the results of FP / PTQ / QAT / PTQAT runs into one Markdown table (and JSON).

Each variant is a directory holding ``metrics.json`` (from ``tools/test.py --out``) and, for
trained variants, ``resources.json`` (``ResourceUsageHook``) and ``discrepancy.json``
(``PTQATHook``)::

    python tools/summarize_ptqat.py work_dirs/quickstart --variants fp ptq qat ptqat ptqat-large
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


def collect(work: str, variants):
    rows = []
    for v in variants:
        d = osp.join(work, v)
        metrics = _load(osp.join(d, 'metrics.json'))
        if metrics is None:
            raise FileNotFoundError(f'{osp.join(d, "metrics.json")} not found (run tools/test.py --out)')
        res = _load(osp.join(d, 'resources.json')) or {}
        dis = _load(osp.join(d, 'discrepancy.json')) or {}
        summary = dis.get('summary', {})
        rows.append(dict(
            variant=v, label=LABELS.get(v, v), NDS=_metric(metrics, 'NDS'), mAP=_metric(metrics, 'mAP'),
            layers_trainable=summary.get('num_selected'), layers_quantized=summary.get('num_layers'),
            params_trainable=res.get('params_trainable'), params_total=res.get('params_total'),
            peak_rss_mb=res.get('peak_rss_mb'), sec_per_iter=res.get('sec_per_iter')))
    return rows


def to_markdown(rows) -> str:
    def fmt(x, f):
        return '–' if x is None else f.format(x)
    out = ['| method | NDS | mAP | layers fine-tuned | trainable params | peak memory (MiB) | s / iter |',
           '|---|---|---|---|---|---|---|']
    for r in rows:
        layers = (f"{r['layers_trainable']} / {r['layers_quantized']}"
                  if r['layers_quantized'] is not None else '–')
        params = (f"{r['params_trainable'] / 1e6:.3f}M / {r['params_total'] / 1e6:.3f}M"
                  if r['params_total'] else '–')
        out.append(f"| {r['label']} | {r['NDS']:.4f} | {r['mAP']:.4f} | {layers} | {params} | "
                   f"{fmt(r['peak_rss_mb'], '{:.0f}')} | {fmt(r['sec_per_iter'], '{:.3f}')} |")
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


if __name__ == '__main__':
    main()
