"""What each run's NDS is made of, and an NDS comparable across runs of a weak detector.

    python tools/nds_breakdown.py fp=work_dirs/quickstart/fp/metrics.json \\
        qat=work_dirs/ptqat_study/CFG/qat/seed0/metrics.json \\
        qat=work_dirs/ptqat_study/CFG/qat/seed1/metrics.json ... [--out breakdown.md]

Each argument is a metrics JSON of a detection run (``tools/test.py --out``, a study run's
``metrics.json`` / ``metrics_<set>.json``, or mmengine's ``<timestamp>.json`` of a test), as
``PATH`` or ``LABEL=PATH``. Per run: NDS, mAP, the five mean TP errors, the classes whose recall
stayed under nuScenes' 10 % (their TP errors are the penalty 1.0, not measured) and the
common-class NDS (the mean TP errors over only the classes above the threshold in every run
given; see ``ptqat.evaluation.nds_breakdown``). Runs sharing a label are also summarised
(mean ± sample std). The tables go to stdout and, with ``--out``, to a Markdown file.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'projects'))

from ptqat.evaluation.nds_breakdown import (  # noqa: E402
    TP_ERRORS, NDSBreakdown, common_class_nds, parse_metrics)


def parse_run_arg(arg: str) -> Tuple[str, str]:
    """``'LABEL=PATH'`` -> (LABEL, PATH); ``'PATH'`` -> (PATH, PATH)."""
    label, sep, path = arg.partition('=')
    if not sep:
        return arg, arg
    if not label or not path:
        raise ValueError(f'{arg!r}: expected PATH or LABEL=PATH with both parts non-empty')
    return label, path


def load_runs(args: Sequence[str], prefix: str = None) -> List[Tuple[str, NDSBreakdown]]:
    """(label, breakdown) per argument; errors name the file."""
    runs = []
    for arg in args:
        label, path = parse_run_arg(arg)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: no such metrics file')
        with open(path) as f:
            try:
                metrics = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}: not JSON ({e})') from e
        if not isinstance(metrics, dict):
            raise ValueError(f'{path}: expected a JSON object of metric name -> value, '
                             f'got {type(metrics).__name__}')
        try:
            runs.append((label, parse_metrics(metrics, prefix)))
        except ValueError as e:
            raise ValueError(f'{path}: {e}') from e
    return runs


def run_table(runs: Sequence[Tuple[str, NDSBreakdown]], common_nds: Sequence[float]) -> str:
    """Markdown: one row per run."""
    names = list(TP_ERRORS.values())
    lines = ['| run | NDS | mAP | ' + ' | '.join(names) + ' | classes under 10 % recall '
             '| NDS, common classes |', '|---' * (5 + len(names)) + '|']
    for (label, b), nds_c in zip(runs, common_nds):
        errors = ' | '.join(f'{b.mean_tp[n]:.3f}' for n in names)
        below = ', '.join(b.below_min_recall) or '–'
        lines.append(f'| {label} | {b.nds:.4f} | {b.mean_ap:.4f} | {errors} | {below} '
                     f'| {nds_c:.4f} |')
    return '\n'.join(lines)


def group_table(runs: Sequence[Tuple[str, NDSBreakdown]], common_nds: Sequence[float]) -> str:
    """Markdown: mean ± sample std per label shared by several runs ('' when none is)."""
    groups: Dict[str, List[Tuple[NDSBreakdown, float]]] = {}
    for (label, b), nds_c in zip(runs, common_nds):
        groups.setdefault(label, []).append((b, nds_c))
    if all(len(g) == 1 for g in groups.values()):
        return ''
    lines = ['| label | runs | NDS | mAP | classes under 10 % recall (mean) | NDS, common classes |',
             '|---|---|---|---|---|---|']
    for label, group in groups.items():
        cols = [_mean_std([b.nds for b, _ in group]), _mean_std([b.mean_ap for b, _ in group]),
                f'{statistics.mean(len(b.below_min_recall) for b, _ in group):.1f}',
                _mean_std([c for _, c in group])]
        lines.append(f'| {label} | {len(group)} | ' + ' | '.join(cols) + ' |')
    return '\n'.join(lines)


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.4f}'
    return f'{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}'


def report(runs: Sequence[Tuple[str, NDSBreakdown]]) -> str:
    """The whole Markdown report for these runs."""
    classes, common_nds = common_class_nds([b for _, b in runs])
    parts = [f'Common classes (above 10 % recall in all {len(runs)} runs): {", ".join(classes)}.',
             'NDS, common classes: 5 mAP plus the five TP scores averaged over those classes only, '
             'over 10 (a diagnostic, not the nuScenes NDS).', '', run_table(runs, common_nds)]
    grouped = group_table(runs, common_nds)
    if grouped:
        parts += ['', grouped]
    return '\n'.join(parts) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+', metavar='[LABEL=]METRICS_JSON',
                   help='detection metrics JSON files; runs sharing a LABEL are also averaged')
    p.add_argument('--prefix', help='metric key prefix when a file holds several NDS (default: '
                   'the one key ending in NDS)')
    p.add_argument('--out', help='also write the Markdown report here (refused if it exists, '
                   'unless --force)')
    p.add_argument('--force', action='store_true', help='overwrite --out')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.out and osp.exists(args.out) and not args.force:
        raise SystemExit(f'{args.out} exists: pass --force to overwrite it')
    try:
        text = report(load_runs(args.runs, args.prefix))
    except (OSError, ValueError) as e:
        raise SystemExit(f'error: {e}') from e
    print(text, end='')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
