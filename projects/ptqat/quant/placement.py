"""Q/DQ placement rules as NVIDIA ModelOpt / TensorRT want them (``QuantConfig`` options
``share_input_quantizers`` and ``quantize_residual_adds``).

By default every quantized layer owns its input quantizer, so a tensor read by several
quantized layers (a ResNet block's ``conv1`` and ``downsample``; the task heads on a shared
feature map) gets one scale per reader, and residual adds are not quantized. TensorRT then
re-quantizes the tensor once per reader and cannot run the conv + residual add in INT8.

A **placement rule** (registered per module type with :func:`register_placement_rule`, by the
framework glue that knows the model code, e.g. ``ptqat.engine.placement_rules`` for mmdet's
ResNet blocks and mmdet3d's CenterHead) says, for one module:

* which quantizers read the same tensor: groups of ``(layer path, quantizer attribute)``
  relative to the module, e.g. ``[[('conv1', 'input_quantizer'), ('downsample.0',
  'input_quantizer')]]``; with ``share_input_quantizers`` every group becomes **one**
  :class:`LSQQuantizer` module, registered under each reader (one step size, one Q/DQ pair
  in the exported graph);
* how to route the module's residual add through an :class:`~ptqat.quant.layers.Add` child
  (``install_add``), which ``quantize_model`` then turns into a
  :class:`~ptqat.quant.layers.QuantAdd` when ``quantize_residual_adds`` is set.

A shared quantizer in the rest of PTQAT (each point checked by a test):

* ``state_dict``: it appears under every reader's name with the same values, so checkpoints
  load into models built with the same config; ``iter_quantizers`` lists it once;
* calibration: it observes its tensor once per reader (the same tensor: the mean statistics
  are those of one reader) and gets its step size once;
* discrepancy (ranking): every reader's ``Dis`` is measured with the shared quantizer on its
  input, i.e. each reader is charged the error of the tensor it reads, as without sharing;
* selection / freezing: the step size is a parameter of every reader; it trains when **any**
  reader is selected for fine-tuning (frozen readers then see the updated step; their weights
  stay frozen) and is frozen only when all of its readers are;
* export: called several times on the same traced tensor it emits one Q/DQ pair that all
  readers consume (:meth:`LSQQuantizer._export_forward` reuses its last output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch.nn as nn

from .layers import Add, QuantModule
from .lsq import LSQQuantizer

__all__ = ['PlacementRule', 'RESIDUAL_ADD_MODES', 'apply_placement_rules', 'placement_rule_for',
           'register_placement_rule', 'registered_placement_rules', 'share_quantizer_groups',
           'unregister_placement_rule']

#: values of ``QuantConfig.quantize_residual_adds``: off, the shortcut operand only
#: (TensorRT's recommendation: the conv branch fuses into the add), or both operands
RESIDUAL_ADD_MODES = (False, 'residual', 'both')

#: a quantizer named by the path of its layer (relative to the rule's module) and its attribute
QuantizerRef = Tuple[str, str]


@dataclass(frozen=True)
class PlacementRule:
    """The placement facts of one module type.

    Attributes:
        shared_inputs: ``shared_inputs(module, residual_add_installed) -> groups``: lists of
            :data:`QuantizerRef` (relative to ``module``) that read one tensor. Layers that end
            up unquantized (skipped) simply drop out of their group.
        install_add: ``install_add(module) -> None`` or None: give ``module`` an
            :class:`~ptqat.quant.layers.Add` child and make its forward add through it (the
            rule's author guarantees the output is unchanged: ``a + b`` is the same sum);
            idempotent (a module that already adds through its ``Add`` keeps it).
        forward_methods: methods of the registered type whose code the facts above describe;
            a subclass that overrides one of them is refused (its data flow may differ).
    """

    shared_inputs: Callable[[nn.Module, bool], List[List[QuantizerRef]]]
    install_add: Optional[Callable[[nn.Module], None]] = None
    forward_methods: Tuple[str, ...] = ('forward',)


_RULES: Dict[type, PlacementRule] = {}


def register_placement_rule(module_cls: type, rule: PlacementRule, *, force: bool = False) -> None:
    """Register ``rule`` for modules of type ``module_cls`` (and subclasses that do not
    override its ``forward_methods``). Re-registering raises ValueError unless ``force``."""
    if not (isinstance(module_cls, type) and issubclass(module_cls, nn.Module)):
        raise TypeError(f'module_cls must be an nn.Module subclass, got {module_cls!r}')
    if not isinstance(rule, PlacementRule):
        raise TypeError(f'rule must be a PlacementRule, got {rule!r}')
    if module_cls in _RULES and _RULES[module_cls] is not rule and not force:
        raise ValueError(f'{module_cls.__name__} already has a placement rule; pass force=True')
    _RULES[module_cls] = rule


def unregister_placement_rule(module_cls: type) -> None:
    """Remove the rule of ``module_cls`` (KeyError if absent)."""
    del _RULES[module_cls]


def registered_placement_rules() -> Dict[type, PlacementRule]:
    """A copy of the rule registry ``{module type: rule}``."""
    return dict(_RULES)


def placement_rule_for(module: nn.Module, name: str = '') -> Optional[PlacementRule]:
    """The rule of the nearest registered class in ``type(module)``'s MRO, or None.

    Raises:
        TypeError: a class between ``type(module)`` and that registered class overrides one of
            the rule's ``forward_methods``.
    """
    cls = type(module)
    base = next((k for k in cls.__mro__ if k in _RULES), None)
    if base is None:
        return None
    rule = _RULES[base]
    over = [f'{k.__name__}.{m}' for k in cls.__mro__[:cls.__mro__.index(base)] for m in rule.forward_methods
            if m in vars(k)]
    if over:
        raise TypeError(f'module {name!r}: {cls.__qualname__} subclasses {base.__name__}, which has a Q/DQ placement '
                        f'rule, but overrides {", ".join(over)}; register a placement rule for it '
                        '(ptqat.quant.register_placement_rule) or turn share_input_quantizers / '
                        'quantize_residual_adds off')
    return rule


def apply_placement_rules(model: nn.Module, residual_adds: bool) -> Tuple[List[List[str]], List[str], int]:
    """Before conversion: run every registered rule on ``model``'s modules.

    Args:
        model: the float model.
        residual_adds: install the residual :class:`~ptqat.quant.layers.Add` of every module
            whose rule has ``install_add``.
    Returns:
        ``(groups, adds, ruled)``: the shared-input groups as absolute ``'layer:attr'``
        strings, the names of the installed ``Add`` modules, the number of modules a rule
        applied to.
    """
    groups: List[List[str]] = []
    adds: List[str] = []
    ruled = 0
    for name, module in list(model.named_modules()):
        rule = placement_rule_for(module, name)
        if rule is None:
            continue
        ruled += 1
        installed = False
        if residual_adds and rule.install_add is not None:
            rule.install_add(module)
            installed = True
            found = [n for n, m in module.named_children() if isinstance(m, Add)]
            if not found:
                raise RuntimeError(f'the placement rule of {type(module).__name__} ({name!r}) installed no Add module')
            adds += [f'{name}.{n}' if name else n for n in found]
        prefix = f'{name}.' if name else ''
        for group in rule.shared_inputs(module, installed):
            groups.append([f'{prefix}{path}:{attr}' for path, attr in group])
    return groups, adds, ruled


def _signature(q: LSQQuantizer) -> tuple:
    return (q.bits, q.signed, q.auto_sign, q.per_channel, q.init_method, q.enabled, q.is_initialized)


def share_quantizer_groups(model: nn.Module, groups: Sequence[Sequence[str]]) -> List[List[str]]:
    """After conversion: make each group's quantizers one module (the first member's).

    Args:
        model: the quantized model.
        groups: lists of ``'layer path:quantizer attribute'`` (absolute); members whose layer
            is not quantized, or whose quantizer is None (no activation bits), drop out.
    Returns:
        the groups actually shared (two members or more), as lists of ``'layer:attr'``.
    Raises:
        ValueError: members of a group differ in bits / sign / granularity / init method (a
            shared quantizer cannot serve both: set the same ``a_bits``/``a_init``/``a_signed``
            for them through ``overrides``), or a path names no module.
    """
    modules = dict(model.named_modules(remove_duplicate=False))
    shared = []
    for group in groups:
        members = []
        for ref in group:
            path, attr = ref.rsplit(':', 1)
            if path not in modules:
                raise ValueError(f'placement rule names {path!r}, which is not a module of the model')
            layer = modules[path]
            q = getattr(layer, attr, None) if isinstance(layer, QuantModule) else None
            if isinstance(q, LSQQuantizer):
                members.append((ref, layer, attr, q))
        if len(members) < 2:
            continue
        ref0, _, _, q0 = members[0]
        for ref, layer, attr, q in members[1:]:
            if q is q0:
                continue
            if _signature(q) != _signature(q0):
                raise ValueError(f'cannot share one input quantizer between {ref0} ({q0.extra_repr()}) and {ref} '
                                 f'({q.extra_repr()}): they read the same tensor but are configured differently; '
                                 'give them the same a_bits / a_init / a_signed (QuantConfig.overrides)')
            layer._modules[attr] = q0
        shared.append([m[0] for m in members])
    return shared
