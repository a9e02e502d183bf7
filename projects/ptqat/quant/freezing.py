"""Freezing everything except the selected layers (PTQAT's partial QAT)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Collection, Dict, List, Sequence

import torch
import torch.nn as nn

from .frozen import make_lean
from .layers import quantized_layers

__all__ = ['FreezeReport', 'freeze_layers', 'frozen_parameter_names']


@dataclass
class FreezeReport:
    """Outcome of :func:`freeze_layers`.

    ``num_params_*`` count scalar elements (``numel``), each shared Parameter once.
    """

    quantized: List[str] = field(default_factory=list)
    trainable: List[str] = field(default_factory=list)
    frozen: List[str] = field(default_factory=list)
    num_params_total: int = 0
    num_params_trainable: int = 0
    train_unquantized: bool = False
    num_params_kept_frozen: int = 0  # frozen by the float model (``keep_frozen``), whatever the selection

    @property
    def num_quantized(self) -> int:
        return len(self.quantized)

    @property
    def num_trainable(self) -> int:
        return len(self.trainable)

    @property
    def num_frozen(self) -> int:
        return len(self.frozen)

    def as_dict(self) -> Dict[str, Any]:
        """Plain dict with the name lists and all counts."""
        d = asdict(self)
        d.update(num_quantized=self.num_quantized, num_trainable=self.num_trainable, num_frozen=self.num_frozen)
        return d

    def format_table(self, show_layers: bool = False) -> str:
        """A small plain-text table; with ``show_layers`` one row per quantized layer."""
        pct = 100.0 * self.num_params_trainable / max(self.num_params_total, 1)
        rows = [('quantized layers', str(self.num_quantized)),
                ('trainable layers', str(self.num_trainable)),
                ('frozen layers', str(self.num_frozen)),
                ('parameters total', f'{self.num_params_total:,}'),
                ('parameters trainable', f'{self.num_params_trainable:,} ({pct:.1f}%)'),
                ('non-quantized params train', 'yes' if self.train_unquantized else 'no'),
                ('kept frozen (float model)', f'{self.num_params_kept_frozen:,}')]
        n_summary = len(rows)
        if show_layers:
            selected = set(self.trainable)
            rows += [(name, 'train' if name in selected else 'frozen') for name in self.quantized]
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        line = f'+-{"-" * w0}-+-{"-" * w1}-+'
        body = [f'| {a:<{w0}} | {b:>{w1}} |' for a, b in rows]
        title = 'PTQAT freeze report'
        out = [line, f'| {title:<{w0 + w1 + 3}} |', line] + body[:n_summary] + [line]
        if show_layers:
            out += body[n_summary:] + [line]
        return '\n'.join(out)

    def __str__(self) -> str:
        return self.format_table()


def frozen_parameter_names(model: nn.Module) -> List[str]:
    """Qualified names of the parameters that do not require a gradient now, e.g. the frozen
    stages of a backbone or fixed loss weights of a float model, to pass as ``keep_frozen`` to
    :func:`freeze_layers` (take them before any freezing)."""
    return [n for n, p in model.named_parameters() if not p.requires_grad]


def freeze_layers(model: nn.Module, trainable: Sequence[str], *, train_unquantized: bool = False,
                  lean: bool = True, keep_frozen: Collection[str] = ()) -> FreezeReport:
    """Make only the ``trainable`` quantized layers trainable.

    * a selected quantized layer trains its own parameters (weight, bias, ...) and its own
      step sizes (see :meth:`QuantModule.own_parameters`);
    * every other quantized layer is frozen (``requires_grad=False``) at its PTQ state;
    * parameters outside every quantized layer (norms, embeddings, ...) are frozen unless
      ``train_unquantized``. (BatchNorm running statistics are buffers and still update
      in train mode; put frozen norms in eval mode if that is not wanted.)
    * the parameters named in ``keep_frozen`` (qualified names, e.g. from
      :func:`frozen_parameter_names` before quantized training: what the float recipe froze,
      such as ``frozen_stages`` of a ResNet, ``requires_grad=False`` norms, fixed loss weights)
      stay frozen whatever the selection; a selected layer's quantizer step sizes still train.

    The selection is recorded in each layer's ``ptqat_trainable`` buffer, i.e. saved in the
    ``state_dict`` and recoverable by :func:`trainable_layers`. Create the optimizer after
    this call (or filter by ``requires_grad``).

    With ``lean`` (default) the model's ``nn.BatchNorm*``/``nn.ReLU`` modules are swapped to
    their lean subclasses (:func:`ptqat.quant.frozen.make_lean`: same ``state_dict``; a frozen
    eval-mode BatchNorm and a ReLU then keep no float activation for the backward pass).
    Frozen quantized layers cache their quantized weight and keep only a ``bool`` mask of
    their input (:mod:`ptqat.quant.frozen`); gradients are unchanged.

    Raises ValueError naming any name in ``trainable`` that is not a quantized layer, or in
    ``keep_frozen`` that is not a parameter of ``model``.
    """
    if isinstance(trainable, str):
        raise ValueError(f'trainable must be a list of layer names, got the string {trainable!r}')
    if isinstance(keep_frozen, str):
        raise ValueError(f'keep_frozen must be a list of parameter names, got the string {keep_frozen!r}')
    named = dict(model.named_parameters())
    not_params = [n for n in keep_frozen if n not in named]
    if not_params:
        raise ValueError(f'keep_frozen: not parameters of this model: {not_params[:8]}'
                         f'{" ..." if len(not_params) > 8 else ""} (e.g. {list(named)[:4]})')
    kept = {id(named[n]) for n in keep_frozen}
    layers = quantized_layers(model)
    names = [n for n, _ in layers]
    known = set(names)
    unknown = [n for n in trainable if n not in known]
    if unknown:
        raise ValueError(f'not quantized layers of this model: {unknown} '
                         f'(quantized: {names[:8]}{" ..." if len(names) > 8 else ""})')
    selected = set(trainable)
    owned = set()
    train = set()
    for name, layer in layers:
        for p in layer.own_parameters():
            owned.add(id(p))
            if name in selected:
                train.add(id(p))
        layer.ptqat_trainable.fill_(name in selected)
    params = {id(p): p for p in named.values()}  # model.parameters(), walked once above
    if lean:
        make_lean(model)
    with torch.no_grad():
        for pid, p in params.items():
            p.requires_grad_(pid not in kept and (pid in train or (train_unquantized and pid not in owned)))
    return FreezeReport(quantized=names, trainable=[n for n in names if n in selected],
                        frozen=[n for n in names if n not in selected],
                        num_params_total=sum(p.numel() for p in params.values()),
                        num_params_trainable=sum(p.numel() for p in params.values() if p.requires_grad),
                        train_unquantized=train_unquantized,
                        num_params_kept_frozen=sum(params[pid].numel() for pid in kept))
