"""``ResourceUsageHook``: peak memory and time per iteration of a training run, to a JSON file.

mmengine's logger reports memory only for CUDA; PTQAT's selling point is less memory and time
than full QAT, so every run records, into ``<work_dir>/resources.json``:

* ``peak_rss_mb``: the process's peak resident set size (``getrusage``; MiB; CPU memory),
* ``cuda_peak_mb``: ``torch.cuda.max_memory_allocated`` (MiB) when CUDA is used, else None,
* ``sec_per_iter``: mean wall time of the training iterations after ``warmup`` (s),
* ``iters``: the iterations timed, and ``params_trainable`` / ``params_total``
  (after the PTQAT hook froze what it froze: the hook runs at a higher priority).
"""
from __future__ import annotations

import json
import os.path as osp
import resource
import sys
import time

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmdet3d.registry import HOOKS


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 ** 2 if sys.platform == 'darwin' else 1024)


@HOOKS.register_module()
class ResourceUsageHook(Hook):
    """Record peak memory and seconds per training iteration (see the module docstring).

    Args:
        warmup: iterations left out of the timing (the first ones include lazy set-up).
        filename: output file name inside the work dir.
    """
    priority = 'VERY_LOW'

    def __init__(self, warmup: int = 2, filename: str = 'resources.json'):
        if warmup < 0:
            raise ValueError(f'warmup must be >= 0, got {warmup}')
        self.warmup = warmup
        self.filename = filename
        self._times = []
        self._t0 = None

    def before_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self._params = (sum(p.numel() for p in model.parameters() if p.requires_grad),
                        sum(p.numel() for p in model.parameters()))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._t0 is not None:
            self._times.append(time.perf_counter() - self._t0)

    def after_train(self, runner) -> None:
        timed = self._times[self.warmup:] or self._times
        record = dict(
            peak_rss_mb=round(peak_rss_mb(), 1),
            cuda_peak_mb=(round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
                          if torch.cuda.is_available() else None),
            sec_per_iter=round(sum(timed) / len(timed), 4) if timed else None,
            iters=len(timed), params_trainable=self._params[0], params_total=self._params[1])
        runner.logger.info(f'resource usage: {record}')
        if is_main_process():
            with open(osp.join(runner.work_dir, self.filename), 'w') as f:
                json.dump(record, f, indent=1)
