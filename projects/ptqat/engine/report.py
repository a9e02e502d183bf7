"""Discrepancy ranking reports: JSON, CSV, bar plot, plain-text tables.

Files written by :func:`write_reports` (``<prefix>`` = ``discrepancy`` by default):

* ``<prefix>.json``: ``{"settings": {...}, "summary": {...}, "layers": [...]}``; one entry
  per quantized layer in network order with ``index, name, type, params, out_shape,
  out_numel, w_bits, a_bits, dis, rank, selected`` (``params``: the layer's own weight and
  bias elements; ``out_shape``/``out_numel``: the per-sample shape and element count of the
  measured output; ``rank`` 1 = smallest discrepancy; ``dis``/``rank``/``out_*`` are null
  for a layer that never ran during the measurement);
* ``<prefix>.csv``: the same per-layer rows (``out_shape`` written as ``64x16x44``);
* ``<prefix>.png``: Dis per layer (network order, log y axis), bars coloured by
  fine-tuned vs frozen, the threshold θ as a horizontal line.
"""
from __future__ import annotations

import csv
import json
import math
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import torch.nn as nn

from ptqat.quant import FreezeReport, layer_param_counts, quantized_layers
from .pipeline import AnalysisResult

__all__ = ['LayerRecord', 'build_records', 'format_ranking', 'format_summary', 'plot_discrepancy',
           'write_reports']

SELECTED_COLOR = '#2a9d8f'
FROZEN_COLOR = '#b0b0b0'
THETA_COLOR = '#e76f51'


@dataclass
class LayerRecord:
    index: int
    name: str
    type: str
    params: int
    out_shape: Optional[List[int]]
    out_numel: Optional[int]
    w_bits: Optional[int]
    a_bits: Optional[int]
    dis: Optional[float]
    rank: Optional[int]
    selected: bool


def build_records(model: nn.Module, dis: Dict[str, float], selected: Sequence[str],
                  output_sizes: Optional[Dict[str, List[int]]] = None) -> List[LayerRecord]:
    """One record per quantized layer of ``model`` in network order; ``output_sizes`` is
    ``{layer: per-sample output shape}`` (:attr:`AnalysisResult.output_sizes`)."""
    order = sorted(dis, key=lambda n: dis[n])
    rank = {n: i + 1 for i, n in enumerate(order)}
    chosen = set(selected)
    counts = layer_param_counts(model)
    sizes = output_sizes or {}
    records = []
    for i, (name, layer) in enumerate(quantized_layers(model)):
        w_bits = getattr(layer, 'w_bits', None) if layer.weight_quantizer_pairs() else None
        shape = sizes.get(name)
        records.append(LayerRecord(index=i, name=name, type=type(layer).__name__, params=counts[name],
                                   out_shape=None if shape is None else list(shape),
                                   out_numel=None if shape is None else int(math.prod(shape)),
                                   w_bits=w_bits, a_bits=getattr(layer, 'a_bits', None),
                                   dis=dis.get(name), rank=rank.get(name), selected=name in chosen))
    return records


def _format_shape(shape: Optional[List[int]]) -> str:
    return '' if shape is None else 'x'.join(str(d) for d in shape) or 'scalar'



def _json_settings(result: AnalysisResult, extra: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    s = result.settings.as_dict()
    s.update(world_size=result.world_size, calib_batches_used=result.calib_batches_used,
             measure_batches_used=result.measure_batches_used, calibrated_now=result.calibrated_now)
    s.update(result.extra)
    if extra:
        s.update(extra)
    return s


def _summary(records: List[LayerRecord], result: AnalysisResult) -> Dict[str, Any]:
    measured = [r for r in records if r.dis is not None]
    return dict(num_layers=len(records), num_measured=len(measured),
                num_selected=sum(r.selected for r in records),
                num_frozen=sum(not r.selected for r in records),
                params_selected=sum(r.params for r in records if r.selected),
                params_quantized=sum(r.params for r in records),
                effective_threshold=result.theta)


def plot_discrepancy(records: List[LayerRecord], path: str, theta: Optional[float] = None,
                     title: str = 'PTQAT: per-layer quantization discrepancy') -> None:
    """Bar plot of Dis per layer (network order) on a log y axis, coloured by selection, and
    below it each layer's parameter count (bars) and output elements per sample (dots)."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = len(records)
    vals = [r.dis for r in records]
    positive = [v for v in vals if v is not None and v > 0]
    floor = min(positive) / 10 if positive else 1e-12
    heights = [(v if v is not None and v > 0 else floor) for v in vals]
    colors = [SELECTED_COLOR if r.selected else FROZEN_COLOR for r in records]
    width = min(max(8.0, 0.14 * n + 2.0), 60.0)
    fig, (ax, ax_size) = plt.subplots(2, 1, figsize=(width, 8.0), sharex=True,
                                      gridspec_kw=dict(height_ratios=[3, 1.6]))
    try:
        ax.bar(range(n), heights, width=0.85, color=colors, edgecolor='none')
        ax.set_yscale('log')
        ax.set_xlim(-0.75, n - 0.25)
        _plot_sizes(ax_size, records, colors)
        # the layer names go under the lower panel
        if n <= 80:
            ax_size.set_xticks(range(n))
            ax_size.set_xticklabels([r.name for r in records], rotation=90, fontsize=6 if n > 30 else 7)
            ax_size.set_xlabel('layer (network order)')
        else:  # hundreds of layers: indices only, names are in the CSV/JSON
            step = max(1, int(math.ceil(n / 60)))
            ticks = list(range(0, n, step))
            ax_size.set_xticks(ticks)
            ax_size.set_xticklabels([str(t) for t in ticks], rotation=90, fontsize=7)
            ax_size.set_xlabel('layer index in network order (names: see the CSV/JSON next to this plot)')
        ax.set_ylabel('Dis(X_Q, X)  (log scale)')
        ax.set_title(title)
        ax.grid(axis='y', which='major', alpha=0.3)
        handles = [Patch(color=SELECTED_COLOR, label=f'fine-tuned ({sum(r.selected for r in records)})'),
                   Patch(color=FROZEN_COLOR, label=f'frozen ({sum(not r.selected for r in records)})')]
        if theta is not None and theta > 0:
            handles.append(ax.axhline(theta, color=THETA_COLOR, linestyle='--', linewidth=1.2,
                                      label=f'threshold θ = {theta:.4g}'))
        if any(v is None for v in vals):
            handles.append(Patch(color='white', label='(bars at the floor: not measured / zero)'))
        # outside the axes (right), so that it never hides bars
        ax.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0,
                  fontsize=8, framealpha=0.9)
        fig.tight_layout()
        fig.savefig(path, dpi=110, bbox_inches='tight')
    finally:
        plt.close(fig)


def _plot_sizes(ax, records: List[LayerRecord], colors: List[str]) -> None:
    """Lower panel: parameters per layer (bars) and output elements per sample (dots), log y."""
    n = len(records)
    ax.bar(range(n), [max(r.params, 1) for r in records], width=0.85, color=colors, edgecolor='none',
           label='parameters')
    xs = [i for i, r in enumerate(records) if r.out_numel]
    ax.plot(xs, [records[i].out_numel for i in xs], 'k.', markersize=4, label='output elements / sample')
    ax.set_yscale('log')
    ax.set_ylabel('size (log scale)')
    ax.grid(axis='y', which='major', alpha=0.3)
    ax.legend(loc='upper left', bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0, fontsize=8, framealpha=0.9)


def write_reports(model: nn.Module, result: AnalysisResult, out_dir: str, prefix: str = 'discrepancy',
                  extra_settings: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """Write ``<prefix>.json``, ``.csv`` and ``.png`` into ``out_dir``; returns their paths.
    Call on one process only (rank 0)."""
    os.makedirs(out_dir, exist_ok=True)
    records = build_records(model, result.discrepancy, result.selected, result.output_sizes)
    paths = {ext: osp.join(out_dir, f'{prefix}.{ext}') for ext in ('json', 'csv', 'png')}
    doc = dict(settings=_json_settings(result, extra_settings), summary=_summary(records, result),
               layers=[asdict(r) for r in records])
    with open(paths['json'], 'w', encoding='utf-8') as f:
        json.dump(doc, f, indent=2, default=str)
    fields = list(LayerRecord.__dataclass_fields__)
    with open(paths['csv'], 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in records:
            row = asdict(r)
            row['dis'] = '' if r.dis is None else repr(r.dis)
            row['out_shape'] = _format_shape(r.out_shape)
            row['out_numel'] = '' if r.out_numel is None else r.out_numel
            writer.writerow(row)
    s = result.settings
    how = _how(s)
    plot_discrepancy(records, paths['png'], result.theta,
                     title=f'PTQAT discrepancy ({s.metric}, {s.mode}); strategy={s.strategy!r}'
                           + ('' if s.strategy in ('all', 'none') else f', {how}'))
    return paths


def _how(s) -> str:
    """``ratio=0.5`` / ``ratio=0.5 of the parameters`` / ``threshold=...`` of settings ``s``."""
    if s.threshold == 'auto':
        rule = getattr(s, 'auto_rule', None)
        budget = getattr(s, 'param_budget', None)
        return f"threshold='auto' ({rule}" + (f', param_budget={budget}' if budget is not None else '') + ')'
    if s.threshold is not None:
        return f'threshold={s.threshold}'
    return f'ratio={s.ratio}' + (' of the parameters' if getattr(s, 'ratio_by', 'layers') == 'params' else '')


def _table(rows: List[Sequence[str]], header: Optional[Sequence[str]] = None, title: Optional[str] = None) -> str:
    cols = len(rows[0]) if rows else len(header or ())
    allrows = ([list(header)] if header else []) + [list(r) for r in rows]
    widths = [max(len(str(r[i])) for r in allrows) for i in range(cols)]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    fmt = lambda r: '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(r, widths)) + ' |'  # noqa: E731
    out = []
    if title:
        out += [title]
    out += [line]
    if header:
        out += [fmt(header), line]
    out += [fmt(r) for r in rows] + [line]
    return '\n'.join(out)


def format_summary(report: FreezeReport, result: Optional[AnalysisResult] = None, title: str = 'PTQAT summary') -> str:
    """Layers quantized / fine-tuned / frozen and parameters total / trainable / frozen."""
    total, train = report.num_params_total, report.num_params_trainable
    pct = lambda k: f'{k:,} ({100.0 * k / max(total, 1):.1f}%)'  # noqa: E731
    rows = [('layers quantized', f'{report.num_quantized}'),
            ('layers fine-tuned', f'{report.num_trainable}'),
            ('layers frozen', f'{report.num_frozen}'),
            ('parameters total', f'{total:,}'),
            ('parameters trainable', pct(train)),
            ('parameters frozen', pct(total - train)),
            ('non-quantized params train', 'yes' if report.train_unquantized else 'no')]
    if result is not None:
        s = result.settings
        how = _how(s)
        rows.insert(0, ('strategy', s.strategy if s.strategy in ('all', 'none') else f'{s.strategy} ({how})'))
        rows.insert(1, ('discrepancy', f'{s.metric}, {s.mode}, {result.measure_batches_used} batches'))
        if result.theta is not None:
            rows.append(('effective threshold θ', f'{result.theta:.6g}'))
    return _table([list(r) for r in rows], title=title)


def format_ranking(model: nn.Module, result: AnalysisResult, max_rows: Optional[int] = None) -> str:
    """The layers sorted by discrepancy (smallest first) with their selection."""
    records = build_records(model, result.discrepancy, result.selected, result.output_sizes)
    ranked = sorted((r for r in records if r.dis is not None), key=lambda r: r.rank)
    ranked += [r for r in records if r.dis is None]
    rows = [[str(r.rank or '-'), r.name, r.type, f'{r.params:,}', _format_shape(r.out_shape) or '-',
             f'W{r.w_bits or "-"}A{r.a_bits or "-"}',
             '-' if r.dis is None else f'{r.dis:.6g}', 'fine-tune' if r.selected else 'frozen'] for r in ranked]
    skipped = 0
    if max_rows is not None and len(rows) > max_rows:
        skipped = len(rows) - max_rows
        rows = rows[:max_rows]
    table = _table(rows, header=['rank', 'layer', 'type', 'params', 'output/sample', 'bits', 'Dis', 'PTQAT'],
                   title='Quantization discrepancy ranking (smallest first)')
    if skipped:
        table += f'\n... {skipped} more layers (see the CSV/JSON)'
    return table
