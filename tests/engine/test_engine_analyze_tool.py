"""tools/analyze_discrepancy.py on a toy ptqat config."""
import json
import os.path as osp

import pytest
import torch

from ptqat_toys import TOY_LAYERS
from tool_loader import load_tool

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
BASES = osp.join(ROOT, 'configs', 'ptqat', '_base_')

CONFIG = '''
_base_ = [{fp!r}, {w4a8!r}, {ptqat!r}]
model = dict(_delete_=True, type='PTQATModel', model=_base_.model, quantization=_base_.quantization)
custom_hooks = [_base_.ptqat_hook]
'''
FP_CONFIG = '''
custom_imports = dict(imports=['ptqat_toys'], allow_failed_imports=False)
default_scope = 'mmdet3d'
model = dict(type='PTQATToyDetector', data_preprocessor=dict(type='BaseDataPreprocessor'))
_loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'),
               dataset=dict(type='PTQATToyDataset', num_samples=32))
train_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=True))
test_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='PTQATToyMetric')
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
train_cfg = dict(by_epoch=False, max_iters=2)
load_from = None
'''


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    (tmp_path / 'fp.py').write_text(FP_CONFIG)
    path = tmp_path / 'ptqat_toy.py'
    path.write_text(CONFIG.format(fp=str(tmp_path / 'fp.py'), w4a8=osp.join(BASES, 'w4a8.py'),
                                  ptqat=osp.join(BASES, 'ptqat.py')))
    return str(path)


def test_analyze_discrepancy_writes_reports(config, tmp_path, fp_ckpt, capsys):
    out = tmp_path / 'out'
    tool = load_tool('analyze_discrepancy')
    result = tool.main([config, fp_ckpt, '--calib-batches', '3', '--metric', 'mse', '--ratio', '0.34',
                        '--out-dir', str(out), '--work-dir', str(tmp_path / 'work'), '--save-calibrated'])
    printed = capsys.readouterr().out
    assert 'Quantization discrepancy ranking' in printed and 'selected 2 of 6' in printed
    doc = json.load(open(out / 'discrepancy.json'))
    assert [r['name'] for r in doc['layers']] == TOY_LAYERS
    assert doc['settings']['metric'] == 'mse' and doc['settings']['calib_batches'] == 3
    assert doc['settings']['ratio'] == 0.34 and doc['settings']['calib_batches_used'] == 3
    assert sum(r['selected'] for r in doc['layers']) == 2 == len(result.selected)
    assert (out / 'discrepancy.csv').is_file() and (out / 'discrepancy.png').is_file()
    sd = torch.load(out / 'ptq_calibrated.pth')['state_dict']
    assert all(bool(v) for k, v in sd.items() if k.endswith('initialized'))
    # the strategy option overrides the config hook's ratio; bad values exit with a message
    tool.main([config, fp_ckpt, '--strategy', 'all', '--calib-batches', '1', '--out-dir', str(out / 'all'),
               '--work-dir', str(tmp_path / 'work')])
    assert all(r['selected'] for r in json.load(open(out / 'all' / 'discrepancy.json'))['layers'])
    with pytest.raises(SystemExit, match='calib_batches must be an integer >= 1, got 0'):
        tool.main([config, fp_ckpt, '--calib-batches', '0', '--work-dir', str(tmp_path / 'work')])
