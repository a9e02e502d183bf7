"""ResourceUsageHook: peak memory, time per iteration and trainable parameters of a run."""
import json

import pytest
from mmengine.runner import Runner
from ptqat_toys import toy_cfg

from ptqat.engine import ResourceUsageHook, peak_rss_mb


def _run(tmp_path, fp_ckpt, strategy):
    cfg = toy_cfg(tmp_path / strategy, load_from=fp_ckpt, max_iters=5,
                  hook=dict(strategy=strategy) if strategy != 'all' else dict(strategy='all', train_unquantized=True))
    cfg['custom_hooks'].append(dict(type='ResourceUsageHook', warmup=1))
    Runner.from_cfg(cfg).train()
    return json.loads((tmp_path / strategy / 'resources.json').read_text())


def test_records_time_memory_and_trainable_params(tmp_path, fp_ckpt):
    ptqat = _run(tmp_path, fp_ckpt, 'small')
    full = _run(tmp_path, fp_ckpt, 'all')
    for rec in (ptqat, full):
        assert rec['iters'] == 4 and rec['sec_per_iter'] > 0
        assert 10 < rec['peak_rss_mb'] <= peak_rss_mb() + 1
        assert rec['cuda_peak_mb'] is None
    # measured after the PTQAT hook froze the unselected layers
    assert ptqat['params_total'] == full['params_total']
    assert 0 < ptqat['params_trainable'] < full['params_trainable'] == full['params_total']


def test_bad_warmup():
    with pytest.raises(ValueError, match='warmup must be >= 0, got -1'):
        ResourceUsageHook(warmup=-1)
