"""Smoke test of tools/benchmark_ptqat.py on a toy Conv-BN-ReLU model (no timing assertions)."""
import copy
import json

import torch
import torch.nn as nn
from tool_loader import load_tool


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for cin, cout in ((3, 8), (8, 8), (8, 8), (8, 8)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def _task(tool):
    from ptqat.quant import QuantConfig, quantize_model
    torch.manual_seed(0)
    fp = _Net()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(2, 3, 16, 16, generator=g), torch.randint(0, 4, (2,), generator=g)) for _ in range(2)]

    def build_quant():
        m = copy.deepcopy(fp)
        quantize_model(m, QuantConfig(w_bits=4, a_bits=8))
        return m

    return tool.Task(name='toy', build_fp=lambda: copy.deepcopy(fp), build_quant=build_quant, batches=batches,
                     loss=lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
                     forward=lambda m, b: m(b[0]), device=torch.device('cpu'))


def test_benchmark_tool_runs_on_a_toy_model(tmp_path):
    tool = load_tool('benchmark_ptqat')
    result = tool.run_benchmark(_task(tool), tool.VARIANTS, steps=1, calib_batches=2, setup='toy', overhead_calls=2)
    rows = result['rows']
    assert set(rows) == set(tool.VARIANTS)
    for v in ('fp', 'qat', 'ptqat', 'ptqat-large', 'qat-plain', 'ptqat-plain'):
        r = rows[v]
        assert r['saved_bytes'] > 0 and r['step_time_s'] > 0 and r['optimizer_state_bytes'] > 0
    assert rows['ptqat']['trainable_params'] < rows['qat']['trainable_params']
    # the lean implementation keeps less for the backward pass than the plain one
    assert rows['ptqat']['saved_bytes_no_params'] < rows['ptqat-plain']['saved_bytes_no_params']
    assert rows['qat']['saved_bytes_no_params'] < rows['qat-plain']['saved_bytes_no_params']
    assert 'skipped' in rows['modelopt'] or rows['modelopt']['saved_bytes'] > 0
    paths = tool.write_outputs(result, str(tmp_path / 'bench'))
    assert json.loads((tmp_path / 'bench.json').read_text())['name'] == 'toy'
    md = (tmp_path / 'bench.md').read_text()
    assert '| PTQAT |' in md and 'saved bytes PTQAT / QAT' in md
    assert (tmp_path / 'bench.png').stat().st_size > 0 and len(paths) == 3


def test_benchmark_tool_rejects_bad_arguments():
    tool = load_tool('benchmark_ptqat')
    import pytest
    with pytest.raises(SystemExit, match='--steps must be >= 1'):
        tool.parse_args(['cfg.py', 'random', '--steps', '0'])
    with pytest.raises(SystemExit, match='does not exist'):
        tool.parse_args(['cfg.py', '/nonexistent.pth'])
    with pytest.raises(ValueError, match='unknown variant'):
        tool.run_benchmark(_task(tool), ['fp', 'bogus'], steps=1, calib_batches=1)


def test_fixed_batch_loader_unwraps_cbgs():
    """BEVDepth4D-R50's train set is CBGS-wrapped: the benchmark reads the inner set in order."""
    from mmengine.config import Config
    tool = load_tool('benchmark_ptqat')
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'ptqat', 'bevdepth4d', 'bevdepth4d-r50_ptqat-w4a8_nus.py'))
    assert cfg.train_dataloader.dataset.type == 'CBGSDataset'
    loader = tool.fixed_batch_loader_cfg(cfg.train_dataloader, '/data/x/', 1)
    assert loader.dataset.type == cfg.train_dataloader.dataset.dataset.type and loader.dataset.data_root == '/data/x/'
    assert (loader.batch_size, loader.num_workers, loader.sampler['shuffle']) == (1, 0, False)
    assert cfg.train_dataloader.dataset.type == 'CBGSDataset'  # the config itself is untouched


def test_estimate_bn_statistics_sets_the_batch_average():
    """Random weights: BatchNorm statistics are the average over the fixed batches."""
    tool = load_tool('benchmark_ptqat')
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=0.1))
    batches = [torch.randn(2, 3, 5, 5) * (i + 1) + i for i in range(3)]
    with torch.no_grad():
        feats = [net[0](b) for b in batches]
    assert tool.estimate_bn_statistics(net, batches, lambda m, b: m(b)) == 1
    bn = net[1]
    want_mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    want_var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(bn.running_mean, want_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, want_var, rtol=1e-5, atol=1e-5)
    assert bn.momentum == 0.1 and not net.training


def test_check_batches_refuses_short_batches():
    tool = load_tool('benchmark_ptqat')
    import pytest
    full = dict(inputs={}, data_samples=[0] * 8)
    tool.check_batches([full, full], 8, 2, '/d/')
    with pytest.raises(ValueError, match=r'batches of \[8, 6\] samples, --batch-size is 8'):
        tool.check_batches([full, dict(inputs={}, data_samples=[0] * 6)], 8, 2, '/d/')
    with pytest.raises(ValueError, match=r'yields 1 training batch\(es\) of 8; --batches asks for 2'):
        tool.check_batches([full], 8, 2, '/d/')


def test_a_failing_variant_becomes_a_failed_row(tmp_path):
    """A variant that raises (e.g. a non-finite loss) is reported in its row; the others still run."""
    tool = load_tool('benchmark_ptqat')
    task = _task(tool)
    calls = {'n': 0}

    def loss(m, b):
        calls['n'] += 1
        out = nn.functional.cross_entropy(m(b[0]), b[1])
        return out * float('nan') if any(p.requires_grad is False for p in m.parameters()) else out
    task = task._replace(loss=loss)
    result = tool.run_benchmark(task, ['fp', 'ptqat'], steps=1, calib_batches=1, setup='toy', overhead_calls=1)
    assert 'saved_bytes' in result['rows']['fp']
    row = result['rows']['ptqat']
    assert row['failed'] and 'FloatingPointError' in row['skipped'] and 'ptqat' in row['skipped']
    assert '| PTQAT | skipped: FAILED: FloatingPointError' in tool.to_markdown(result)
