"""tools/benchmark_onnx.py: argument checks (fast) and one tiny model end to end (slow)."""
import json

import pytest
from tool_loader import load_tool


def test_bad_arguments_are_refused():
    tool = load_tool('benchmark_onnx')
    for argv in (['--runs', '0'], ['--threads', '0'], ['--models', 'nope']):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)


def test_ring_rig_points_fill_the_grid():
    """The synthetic rig's cameras see the BEV grid (a benchmark on an empty grid would time
    a pooling with no points)."""
    tool = load_tool('benchmark_onnx')
    from ptqat.deploy import frame_inputs
    det = tool.build(tool.MODELS['bevdet-tiny'][0])
    frame = frame_inputs(det, tool.ring_rig_inputs(det))[0]
    vt = det.img_view_transformer
    cells = len(set(frame['ranks_bev'].tolist()))
    assert cells > 0.2 * vt.grid_size[0] * vt.grid_size[1]


@pytest.mark.slow
def test_benchmark_tiny(tmp_path):
    out = tmp_path / 'bench.json'
    load_tool('benchmark_onnx').main(['--models', 'bevdet-tiny', '--runs', '1', '--warmup', '0',
                                      '--out', str(out), '--placement'])
    row = json.loads(out.read_text())['models'][0]
    for k in ('fp32', 'qdq_int8', 'qdq_int4', 'qdq_placed_int8'):
        assert row[k]['median_ms'] > 0 and row[k]['file_mb'] > 0
    assert row['qdq_int4']['file_mb'] < row['fp32']['file_mb'] / 4
