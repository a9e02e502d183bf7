"""Helpers shared by calibration and discrepancy measurement (private)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import torch.nn as nn

from .layers import iter_quantizers

ForwardFn = Callable[[nn.Module, Any], Any]


def default_forward(model: nn.Module, batch: Any) -> Any:
    """``model(batch)`` for a tensor/other object, ``model(*batch)`` for a tuple/list,
    ``model(**batch)`` for a dict."""
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    if isinstance(batch, Mapping):
        return model(**batch)
    return model(batch)


def progress_iter(batches: Iterable, desc: str, enabled: bool) -> Iterable:
    """``batches`` wrapped in a tqdm bar on stderr when ``enabled`` and tqdm is importable."""
    if not enabled:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return batches
    total: Optional[int]
    try:
        total = len(batches)  # type: ignore[arg-type]
    except TypeError:
        total = None
    return tqdm(batches, desc=desc, total=total, file=sys.stderr, leave=False)


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Restore the model's train/eval flags and every quantizer's ``enabled``/``observing``
    flag on exit (also on exception)."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(q, q.enabled, q.observing) for _, q in iter_quantizers(model)]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for q, enabled, observing in flags:
            q.enabled, q.observing = enabled, observing
            q._stats = None
