"""The PTQAT steps on an mmengine model, DDP-aware: calibration, discrepancy, selection.

Shared by :class:`~ptqat.engine.PTQATHook` and ``tools/analyze_discrepancy.py``.

How batches reach the model: a batch from an mmengine dataloader goes through
``model.data_preprocessor(batch, training=False)`` and then ``model(**data, mode=...)``
(``mode='tensor'`` by default: the detector's ``_forward``, i.e. backbone, neck and head
without post-processing; ``'predict'`` also works for every mmdet3d detector). The model is
the unwrapped module (never the DDP wrapper, so no gradient synchronisation is involved);
``ptqat.quant`` puts it in eval mode under ``torch.no_grad()`` and restores the modes.

Distributed runs: every rank runs the same calls. Calibration statistics and discrepancy
sums are all-reduced (``reduce_fn``), the selection is made on rank 0 and broadcast, and the
step sizes are broadcast from rank 0 afterwards, so every rank ends with identical
quantizers and trains the same layers.
"""
from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional

import torch
import torch.nn as nn
from mmengine.dist import (all_reduce, broadcast, broadcast_object_list, get_rank, get_world_size,
                           is_distributed)
from mmengine.model import is_model_wrapper

from ptqat.quant import (METRICS, MODES, RATIO_BY, STRATEGIES, auto_threshold, calibrate,
                         iter_quantizers, layer_param_counts, measure_discrepancy, quantized_layers,
                         resolve_auto_rule, select_layers)

__all__ = [
    'FORWARD_MODES', 'AnalysisResult', 'CountingBatches', 'PTQATSettings', 'calibrate_model',
    'dist_reduce_fn', 'effective_threshold', 'is_calibrated', 'limit_batches', 'make_forward_fn',
    'run_analysis', 'sync_quantizers', 'uninitialized_quantizers', 'unwrap_model',
]

FORWARD_MODES = ('tensor', 'predict')


# --------------------------------------------------------------------------- settings
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


@dataclass
class PTQATSettings:
    """Validated PTQAT settings (see :class:`~ptqat.engine.PTQATHook` for their meaning).

    ``ratio=None`` with strategy small/large/random and no threshold means 0.5.
    ``ratio_by='params'`` makes ``ratio`` a share of the quantized layers' parameters
    instead of the layers. ``threshold='auto'`` (small/large) picks θ from the sorted
    discrepancy curve with ``auto_rule`` (``'knee'``, ``'knee-log'``, or ``'budget'`` with
    ``param_budget``; see :func:`ptqat.quant.auto_threshold`). Every invalid value raises
    ValueError naming it and the allowed
    values.
    """

    calib_batches: int = 32
    metric: str = 'l2'
    mode: str = 'local'
    strategy: str = 'small'
    ratio: Optional[float] = None
    threshold: Optional[float] = None
    seed: int = 0
    forward_mode: str = 'tensor'
    ratio_by: str = 'layers'
    auto_rule: Optional[str] = None
    param_budget: Optional[float] = None

    def __post_init__(self) -> None:
        if not _is_int(self.calib_batches) or self.calib_batches < 1:
            raise ValueError(f'PTQAT: calib_batches must be an integer >= 1, got {self.calib_batches!r}')
        self.calib_batches = int(self.calib_batches)
        if self.metric not in METRICS:
            raise ValueError(f'PTQAT: unknown metric {self.metric!r}; allowed: {", ".join(METRICS)}')
        if self.mode not in MODES:
            raise ValueError(f'PTQAT: unknown mode {self.mode!r}; allowed: {", ".join(MODES)}')
        if self.strategy not in STRATEGIES:
            raise ValueError(f'PTQAT: unknown strategy {self.strategy!r}; allowed: {", ".join(STRATEGIES)}')
        if self.forward_mode not in FORWARD_MODES:
            raise ValueError(f'PTQAT: unknown forward_mode {self.forward_mode!r}; '
                             f'allowed: {", ".join(FORWARD_MODES)}')
        if not _is_int(self.seed):
            raise ValueError(f'PTQAT: seed must be an integer, got {self.seed!r}')
        if isinstance(self.threshold, str):
            if self.threshold != 'auto':
                raise ValueError(f"PTQAT: threshold must be a number >= 0 or 'auto', got {self.threshold!r}")
            if self.strategy not in ('small', 'large'):
                raise ValueError(f"PTQAT: threshold='auto' needs strategy 'small' or 'large', got {self.strategy!r}")
            self.auto_rule = resolve_auto_rule(self.auto_rule, self.param_budget)
            if self.auto_rule == 'budget' and self.param_budget is None:
                raise ValueError("PTQAT: auto_rule='budget' needs param_budget (a parameter count >= 1 or a share "
                                 'in (0, 1) of the quantized layers\' parameters)')
            if self.auto_rule != 'budget' and self.param_budget is not None:
                raise ValueError(f'PTQAT: param_budget={self.param_budget!r} is only used by auto_rule=\'budget\', '
                                 f'not {self.auto_rule!r}')
            if self.param_budget is not None:
                _check_budget_value(self.param_budget)
        elif self.auto_rule is not None or self.param_budget is not None:
            raise ValueError(f'PTQAT: auto_rule={self.auto_rule!r} / param_budget={self.param_budget!r} need '
                             f"threshold='auto', got threshold={self.threshold!r}")
        for name in ('ratio', 'threshold'):
            v = getattr(self, name)
            if name == 'threshold' and v == 'auto':
                continue
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v)):
                raise ValueError(f'PTQAT: {name} must be a number or None, got {v!r}')
        if self.threshold is not None and self.threshold != 'auto' and self.threshold < 0:
            raise ValueError(f'PTQAT: threshold must be >= 0 (discrepancies are distances >= 0, so a '
                             f'negative one selects every layer or none), got {self.threshold!r}')
        if self.ratio is not None and not 0.0 < float(self.ratio) <= 1.0:
            raise ValueError(f'PTQAT: ratio must be in (0, 1], got {self.ratio!r}')
        if self.strategy in ('all', 'none'):
            if self.ratio is not None or self.threshold is not None:
                raise ValueError(f'PTQAT: strategy {self.strategy!r} takes no ratio/threshold, got '
                                 f'ratio={self.ratio!r}, threshold={self.threshold!r}')
        elif self.strategy == 'random':
            if self.threshold is not None:
                raise ValueError(f"PTQAT: strategy 'random' takes a ratio, not a threshold "
                                 f'(got threshold={self.threshold!r})')
        elif self.ratio is not None and self.threshold is not None:
            raise ValueError(f'PTQAT: strategy {self.strategy!r} takes a ratio OR a threshold, got '
                             f'ratio={self.ratio!r} and threshold={self.threshold!r}')
        if self.strategy in ('small', 'large', 'random') and self.ratio is None and self.threshold is None:
            self.ratio = 0.5
        if self.ratio_by not in RATIO_BY:
            raise ValueError(f'PTQAT: unknown ratio_by {self.ratio_by!r}; allowed: {", ".join(RATIO_BY)}')
        if self.ratio_by == 'params' and self.ratio is None:
            raise ValueError(f"PTQAT: ratio_by='params' needs a ratio; strategy={self.strategy!r} with "
                             f'threshold={self.threshold!r} does not use one')
        if self.ratio is not None:
            self.ratio = float(self.ratio)
        if self.threshold is not None and self.threshold != 'auto':
            self.threshold = float(self.threshold)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _check_budget_value(budget: Any) -> None:
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real) or math.isnan(float(budget)):
        raise ValueError(f'PTQAT: param_budget must be a parameter count (integer >= 1) or a share in (0, 1), '
                         f'got {budget!r}')
    if isinstance(budget, numbers.Integral) and budget < 1:
        raise ValueError(f'PTQAT: param_budget must be >= 1 parameter (or a share in (0, 1)), got {budget!r}')
    if not isinstance(budget, numbers.Integral) and not 0.0 < float(budget) < 1.0:
        raise ValueError(f'PTQAT: param_budget as a share must be in (0, 1) (an integer is a count), got {budget!r}')


# --------------------------------------------------------------------------- helpers
def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside an mmengine/torch model wrapper (DDP ...), or ``model`` itself."""
    return model.module if is_model_wrapper(model) else model


def make_forward_fn(mode: str = 'tensor') -> Callable[[nn.Module, Any], Any]:
    """``forward_fn(model, batch)``: ``model.data_preprocessor(batch, training=False)`` and
    then ``model(**data, mode=mode)`` (``model(*data, mode=mode)`` for a list/tuple)."""
    if mode not in FORWARD_MODES:
        raise ValueError(f'unknown forward mode {mode!r}; allowed: {", ".join(FORWARD_MODES)}')

    def forward_fn(model: nn.Module, batch: Any) -> Any:
        data = model.data_preprocessor(batch, training=False)
        if isinstance(data, Mapping):
            return model(**data, mode=mode)
        if isinstance(data, (list, tuple)):
            return model(*data, mode=mode)
        return model(data, mode=mode)

    return forward_fn


def dist_reduce_fn() -> Optional[Callable[[torch.Tensor, str], torch.Tensor]]:
    """A ``reduce_fn(tensor, op)`` all-reducing across ranks, or None when not distributed."""
    if not is_distributed():
        return None

    def reduce_fn(tensor: torch.Tensor, op: str) -> torch.Tensor:
        all_reduce(tensor, op='max' if op == 'max' else 'sum')
        return tensor

    return reduce_fn


class CountingBatches:
    """Iterable wrapper counting the batches consumed (``.n``)."""

    def __init__(self, batches: Iterable) -> None:
        self.batches = batches
        self.n = 0

    def __iter__(self) -> Iterator:
        for b in self.batches:
            self.n += 1
            yield b


def limit_batches(dataloader: Iterable, total: int) -> CountingBatches:
    """At most this rank's share of ``total`` batches: ``ceil(total / world_size)``.

    With a distributed sampler each rank sees a different shard, so the union over the
    ranks is (about) the same ``total`` batches as in a single-process run.
    """
    per_rank = math.ceil(total / get_world_size())
    return CountingBatches(itertools.islice(dataloader, per_rank))


def is_calibrated(model: nn.Module) -> bool:
    """True when any quantizer has an initialised step size (calibrated or loaded)."""
    return any(q.is_initialized for _, q in iter_quantizers(model))


def uninitialized_quantizers(model: nn.Module) -> List[str]:
    return [n for n, q in iter_quantizers(model) if not q.is_initialized]


def sync_quantizers(model: nn.Module) -> None:
    """Broadcast every step size from rank 0 (no-op when not distributed)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for _, q in iter_quantizers(model):
            broadcast(q.step_size.data, src=0)


def calibrate_model(model: nn.Module, batches: Iterable, forward_mode: str = 'tensor',
                    progress: bool = False) -> None:
    """``ptqat.quant.calibrate`` with the mmengine forward function, all-reduced statistics
    and rank-0 step sizes (every rank must call it)."""
    calibrate(model, batches, make_forward_fn(forward_mode), progress=progress, reduce_fn=dist_reduce_fn())
    sync_quantizers(model)


def effective_threshold(dis: Mapping[str, float], selected: List[str], strategy: str,
                        threshold: Optional[float]) -> Optional[float]:
    """The θ separating selected from unselected layers: the given threshold, or for a ratio
    the geometric mean (arithmetic when a value is <= 0) of the last selected and the first
    unselected discrepancy. None for all/none/random or when one side is empty."""
    if strategy not in ('small', 'large'):
        return None
    if threshold is not None:
        return float(threshold)
    sel = [dis[n] for n in selected if n in dis]
    rest = [v for n, v in dis.items() if n not in set(selected)]
    if not sel or not rest:
        return None
    a, b = (max(sel), min(rest)) if strategy == 'small' else (min(sel), max(rest))
    return math.sqrt(a * b) if a > 0 and b > 0 else 0.5 * (a + b)


@dataclass
class AnalysisResult:
    """Discrepancies (all ranks identical), the selection and what produced them."""

    discrepancy: Dict[str, float]
    selected: List[str]
    settings: PTQATSettings
    theta: Optional[float] = None
    calibrated_now: bool = False
    calib_batches_used: int = 0
    measure_batches_used: int = 0
    world_size: int = 1
    extra: Dict[str, Any] = field(default_factory=dict)
    #: per-sample output shape of each measured layer (rank 0's first call)
    output_sizes: Dict[str, List[int]] = field(default_factory=dict)


def run_analysis(model: nn.Module, make_batches: Callable[[], Iterable], settings: PTQATSettings, *,
                 calibrate_first: bool = True, progress: bool = False) -> AnalysisResult:
    """Calibrate (if ``calibrate_first``), measure ``Dis(X_Q, X)`` per layer, select layers.

    Args:
        model: the unwrapped quantized model.
        make_batches: returns a fresh iterable of this rank's batches (called once for the
            calibration and once for the measurement), e.g. ``lambda: limit_batches(loader, n)``.
        settings: validated settings.
    Every rank must call this; the returned result is identical on every rank.
    """
    if not quantized_layers(model):
        raise ValueError('PTQAT: the model has no quantized layers; build it with '
                         "model=dict(type='PTQATModel', model=..., quantization=...)")
    forward_fn = make_forward_fn(settings.forward_mode)
    n_cal = 0
    if calibrate_first:
        batches = make_batches()
        calibrate_model(model, batches, settings.forward_mode, progress=progress)
        n_cal = getattr(batches, 'n', 0)
    batches = make_batches()
    sizes: Dict[str, List[int]] = {}
    dis = measure_discrepancy(model, batches, forward_fn, metric=settings.metric, mode=settings.mode,
                              progress=progress, reduce_fn=dist_reduce_fn(), output_sizes=sizes)
    n_meas = getattr(batches, 'n', 0)
    payload: List[Any] = [None]
    if get_rank() == 0:
        threshold = settings.threshold
        if threshold == 'auto':  # θ from the sorted discrepancy curve, then an ordinary threshold
            threshold = auto_threshold(dis, settings.strategy, settings.auto_rule, param_budget=settings.param_budget,
                                       params=layer_param_counts(model) if settings.auto_rule == 'budget' else None)
        selected = select_layers(dis, settings.strategy, settings.ratio, threshold, settings.seed,
                                 ratio_by=settings.ratio_by, params=layer_param_counts(model))
        payload = [(dis, selected, sizes, threshold)]
    broadcast_object_list(payload, src=0)
    dis, selected, sizes, threshold = payload[0]
    if is_distributed():  # the batch counts summed over the ranks
        counts = torch.tensor([n_cal, n_meas], dtype=torch.float64)
        all_reduce(counts, op='sum')
        n_cal, n_meas = (int(v) for v in counts.tolist())
    return AnalysisResult(discrepancy=dict(dis), selected=list(selected), settings=settings,
                          theta=effective_threshold(dis, selected, settings.strategy, threshold),
                          calibrated_now=calibrate_first, calib_batches_used=n_cal,
                          measure_batches_used=n_meas, world_size=get_world_size(), output_sizes=dict(sizes))
