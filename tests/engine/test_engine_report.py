"""Reports: effective threshold, plot with hundreds of layers, tables."""
import csv
import json
import math

import pytest

from ptqat.engine import PTQATSettings, effective_threshold, format_summary, plot_discrepancy
from ptqat.engine.pipeline import AnalysisResult
from ptqat.engine.report import LayerRecord, format_ranking, write_reports
from ptqat.quant import FreezeReport, freeze_layers, quantize_model
from ptqat_toys import FP_MODEL, TOY_LAYERS

DIS = {'a': 0.1, 'b': 0.4, 'c': 0.01, 'd': 1.6}


@pytest.mark.parametrize('strategy, selected, threshold, expected', [
    ('small', ['a', 'c'], None, math.sqrt(0.1 * 0.4)),
    ('large', ['b', 'd'], None, math.sqrt(0.4 * 0.1)),
    ('small', ['a', 'c'], 0.2, 0.2),
    ('all', list(DIS), None, None),
    ('none', [], None, None),
    ('random', ['a', 'b'], None, None),
])
def test_effective_threshold(strategy, selected, threshold, expected):
    theta = effective_threshold(DIS, selected, strategy, threshold)
    assert theta == pytest.approx(expected) if expected is not None else theta is None


def test_plot_hundreds_of_layers(tmp_path):
    recs = [LayerRecord(i, f'backbone.layer{i // 50}.{i % 50}.conv', 'QuantConv2d', 100 + i, [16, 8], 128, 4, 8,
                        10 ** (-3 + (i * 7919 % 400) / 100), None, i % 2 == 0) for i in range(300)]
    recs[5].dis = None  # a layer that never ran
    recs[6].dis = 0.0
    path = str(tmp_path / 'many.png')
    plot_discrepancy(recs, path, theta=0.05)
    assert open(path, 'rb').read(4) == b'\x89PNG'


def test_write_reports_and_tables(tmp_path):
    import copy
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    model = MODELS.build(copy.deepcopy(FP_MODEL))
    quantize_model(model, dict(w_bits=4, a_bits=None))
    dis = {n: float(i + 1) for i, n in enumerate(TOY_LAYERS) if n != 'neck'}  # 'neck' never ran
    settings = PTQATSettings(strategy='small', ratio=0.5)
    selected = ['stem.0', 'layer1.0', 'layer1.3']
    sizes = {n: [8, 4, 2 + i] for i, n in enumerate(TOY_LAYERS) if n != 'neck'}
    result = AnalysisResult(discrepancy=dis, selected=selected, settings=settings,
                            theta=effective_threshold(dis, selected, 'small', None), output_sizes=sizes)
    paths = write_reports(model, result, str(tmp_path), 'rank')
    doc = json.load(open(paths['json']))
    assert [r['name'] for r in doc['layers']] == TOY_LAYERS
    neck = doc['layers'][TOY_LAYERS.index('neck')]
    assert neck['dis'] is None and neck['rank'] is None and not neck['selected']
    # every layer's parameter count and output size, in JSON, CSV and the log table
    own = {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in model.named_modules()}
    assert [r['params'] for r in doc['layers']] == [own[n] for n in TOY_LAYERS]
    stem = doc['layers'][0]
    assert stem['out_shape'] == [8, 4, 2] and stem['out_numel'] == 64 and neck['out_shape'] is None
    rows = list(csv.DictReader(open(paths['csv'])))
    assert rows[0]['out_shape'] == '8x4x2' and rows[0]['out_numel'] == '64'
    assert rows[0]['params'] == str(own['stem.0']) and rows[TOY_LAYERS.index('neck')]['out_shape'] == ''
    full = format_ranking(model, result)
    assert 'output/sample' in full and '8x4x2' in full and f"{own['stem.0']:,}" in full
    assert doc['layers'][0]['a_bits'] is None and doc['layers'][0]['w_bits'] == 4
    assert doc['summary']['num_measured'] == 5 and doc['summary']['num_selected'] == 3
    assert doc['summary']['effective_threshold'] == pytest.approx(math.sqrt(3 * 4))
    table = format_ranking(model, result, max_rows=4)
    assert 'stem.0' in table and '... 2 more layers' in table
    report = freeze_layers(model, selected)
    text = format_summary(report, result)
    for s in ('layers quantized', 'layers fine-tuned', 'layers frozen', 'parameters frozen', 'small (ratio=0.5)'):
        assert s in text
    assert isinstance(report, FreezeReport)
