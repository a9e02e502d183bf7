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
