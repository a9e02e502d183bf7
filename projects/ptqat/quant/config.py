"""Quantization configuration and in-place model conversion."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch.nn as nn

from .layers import QuantAdd, QuantModule, quantized_layers
from .lsq import INIT_METHODS, check_bits
from .placement import RESIDUAL_ADD_MODES, apply_placement_rules, share_quantizer_groups
from .registry import check_quantizable, get_quant_module_class

__all__ = ['LayerQuantSpec', 'QuantConfig', 'quantize_model']

#: Fields an ``overrides`` entry may set.
OVERRIDE_FIELDS = ('w_bits', 'a_bits', 'w_per_channel', 'quantize_inputs', 'w_init', 'a_init', 'a_signed',
                   'quantize_attention_matmuls')

#: Values of ``a_signed``.
A_SIGNED_VALUES = (True, False, 'auto')


@dataclass(frozen=True)
class LayerQuantSpec:
    """The resolved settings of one layer (``a_bits`` is None when inputs are not quantized)."""

    w_bits: int
    a_bits: Optional[int]
    w_per_channel: bool
    w_init: str
    a_init: str
    a_signed: Union[bool, str] = True
    quantize_attention_matmuls: bool = False


def _check_fields(d: Mapping[str, Any], where: str) -> None:
    if 'w_bits' in d:
        check_bits(d['w_bits'], f'{where}w_bits')
    if 'a_bits' in d and d['a_bits'] is not None:
        check_bits(d['a_bits'], f'{where}a_bits')
    for key in ('w_per_channel', 'quantize_inputs', 'quantize_attention_matmuls'):
        if key in d and not isinstance(d[key], bool):
            raise ValueError(f'{where}{key} must be a bool, got {d[key]!r}')
    if 'a_signed' in d and not (isinstance(d['a_signed'], bool) or d['a_signed'] == 'auto'):
        raise ValueError(f"{where}a_signed must be True, False or 'auto', got {d['a_signed']!r}")
    for key in ('w_init', 'a_init'):
        if key in d and d[key] not in INIT_METHODS:
            raise ValueError(f'{where}{key}={d[key]!r} is not a step-size init method; '
                             f'allowed: {", ".join(INIT_METHODS)}')


def _compile(pattern: Any, what: str) -> 're.Pattern[str]':
    if not isinstance(pattern, str):
        raise ValueError(f'{what} pattern must be a string, got {pattern!r}')
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f'invalid regular expression in {what}: {pattern!r} ({exc})') from None


@dataclass
class QuantConfig:
    """What ``quantize_model`` quantizes and how.

    Attributes:
        w_bits: weight bits (2..8). The paper's W4 setting is the default.
        a_bits: input-activation bits (2..8) or None for weight-only quantization.
        w_per_channel: per-output-channel weight step sizes (else per tensor).
        quantize_inputs: quantize layer inputs with ``a_bits``; False is the same as
            ``a_bits=None`` but can be set per layer through ``overrides``.
        skip: regular expressions over qualified module names (``re.search``: a pattern
            matches anywhere in the name, anchor with ``^``/``$``); matching layers stay float.
        overrides: ``{regex: {field: value}}`` with fields from ``OVERRIDE_FIELDS``, e.g.
            ``{r'^backbone\\.conv1$': {'w_bits': 8}, r'^head\\.': {'w_bits': 8}}``; patterns
            use ``re.search``; when several match a layer they apply in dict order (later wins).
        w_init: weight step-size init, default ``'mse'``: weights are available in full, the
            per-channel MSE grid search is cheap and is the best PTQ start at 4 bits, where
            ``minmax`` wastes levels on outliers and ``lsq`` (2*mean/sqrt(Qp)) is tuned for
            training from scratch rather than PTQ.
        a_init: activation step-size init, default ``'percentile'`` (99.99th of ``|x|``,
            averaged over calibration batches): robust to rare activation outliers at 8 bits,
            cheap to accumulate over many batches and reducible across processes. ``'mse'``
            is preferable for <= 6-bit activations.
        a_signed: the grid of the activation (input) quantizers: ``True`` (default) signed
            ``[-2^(b-1), 2^(b-1)-1]``, the INT8 Q/DQ that TensorRT executes; ``False``
            unsigned ``[0, 2^b-1]`` (negative inputs clip to 0); ``'auto'``: calibration
            picks unsigned for a quantizer whose calibration data had no negative value
            (e.g. after a ReLU), signed otherwise; the decision is stored in the state_dict
            (buffer ``auto_signed``). Weights are always signed. Unsigned 8-bit grids export as
            UINT8 Q/DQ, narrower unsigned grids as ``Clip(0, Qp*s)`` + INT8 Q/DQ (both exact).
        quantize_attention_matmuls: also quantize, per tensor with ``a_bits`` (signed, or as
            ``a_signed`` says), the inputs of the two attention matmuls (``Q·Kᵀ`` and
            ``A·V``) of every ``nn.MultiheadAttention`` (see :class:`QuantMultiheadAttention`).
            Needs activation bits on those layers.
        share_input_quantizers: ModelOpt / TensorRT placement: the quantized layers that read
            one tensor (as the registered placement rules say, see
            :mod:`ptqat.quant.placement`: a ResNet block's ``conv1`` and ``downsample``, the
            task heads on a shared feature map) share **one** input quantizer module: one step
            size, one Q/DQ pair in the exported graph. Default False (one per reader).
        quantize_residual_adds: ``False`` (default), ``'residual'`` or ``'both'``: route the
            residual add of every block with a placement rule (ResNet ``BasicBlock`` /
            ``Bottleneck``) through a :class:`~ptqat.quant.layers.QuantAdd` layer quantizing
            the shortcut operand (``'residual'``: TensorRT's recommendation, the conv branch
            is fused into the add) or both operands (``'both'``). With
            ``share_input_quantizers`` the shortcut quantizer of a block without downsample is
            its ``conv1``'s input quantizer (the same tensor).

    Validation happens on construction (bits, init methods, regexes, override fields); a
    skip/override pattern that matches no quantizable layer raises in ``quantize_model``.
    """

    w_bits: int = 4
    a_bits: Optional[int] = 8
    w_per_channel: bool = True
    quantize_inputs: bool = True
    skip: Tuple[str, ...] = ()
    overrides: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    w_init: str = 'mse'
    a_init: str = 'percentile'
    a_signed: Union[bool, str] = True
    quantize_attention_matmuls: bool = False
    share_input_quantizers: bool = False
    quantize_residual_adds: Union[bool, str] = False

    def __post_init__(self) -> None:
        if isinstance(self.skip, str):
            self.skip = (self.skip,)
        self.skip = tuple(self.skip)
        _check_fields(dataclasses.asdict(self), '')
        if not isinstance(self.share_input_quantizers, bool):
            raise ValueError(f'share_input_quantizers must be a bool, got {self.share_input_quantizers!r}')
        if not any(self.quantize_residual_adds is m or (isinstance(m, str) and self.quantize_residual_adds == m)
                   for m in RESIDUAL_ADD_MODES):
            raise ValueError(f'quantize_residual_adds must be one of {RESIDUAL_ADD_MODES}, '
                             f'got {self.quantize_residual_adds!r}')
        for pattern in self.skip:
            _compile(pattern, 'skip')
        if not isinstance(self.overrides, Mapping):
            raise ValueError(f'overrides must be a dict of {{regex: {{field: value}}}}, got {self.overrides!r}')
        self.overrides = dict(self.overrides)
        for pattern, values in self.overrides.items():
            _compile(pattern, 'overrides')
            if not isinstance(values, Mapping):
                raise ValueError(f'overrides[{pattern!r}] must be a dict, got {values!r}')
            unknown = sorted(set(values) - set(OVERRIDE_FIELDS))
            if unknown:
                raise ValueError(f'overrides[{pattern!r}] has unknown field(s) {unknown}; '
                                 f'allowed: {", ".join(OVERRIDE_FIELDS)}')
            _check_fields(values, f'overrides[{pattern!r}].')

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> 'QuantConfig':
        """Build from a plain dict (e.g. an mmengine config section); unknown keys raise
        ValueError naming them and the allowed ones."""
        if isinstance(d, QuantConfig):
            return d
        if not isinstance(d, Mapping):
            raise ValueError(f'QuantConfig.from_dict expects a dict, got {type(d).__name__}')
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(allowed))
        if unknown:
            raise ValueError(f'unknown QuantConfig key(s) {unknown}; allowed: {", ".join(allowed)}')
        kwargs = dict(d)
        if 'skip' in kwargs and not isinstance(kwargs['skip'], str):
            kwargs['skip'] = tuple(kwargs['skip'])
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        """Plain-dict form (``from_dict(to_dict())`` round-trips)."""
        d = dataclasses.asdict(self)
        d['skip'] = list(self.skip)
        return d

    def is_skipped(self, name: str) -> bool:
        """Whether layer ``name`` is excluded by ``skip``."""
        return any(re.search(p, name) for p in self.skip)

    def resolve(self, name: str) -> LayerQuantSpec:
        """The settings for layer ``name`` after applying matching ``overrides``."""
        values = {k: getattr(self, k) for k in OVERRIDE_FIELDS}
        for pattern, override in self.overrides.items():
            if re.search(pattern, name):
                values.update(override)
        a_bits = values['a_bits'] if values['quantize_inputs'] else None
        return LayerQuantSpec(values['w_bits'], a_bits, values['w_per_channel'], values['w_init'],
                              values['a_init'], values['a_signed'], values['quantize_attention_matmuls'])


def _module_device(module: nn.Module):
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None


def _set_activation_sign(layer: QuantModule, a_signed: Union[bool, str]) -> None:
    """Apply ``a_signed`` (True / False / 'auto') to the layer's own activation quantizers."""
    for q in layer.activation_quantizers():
        if a_signed == 'auto':
            q.enable_auto_sign()
        else:
            q.set_signed(a_signed)


def _check_attention_matmul_request(config: QuantConfig, candidates: List[nn.Module], names: Dict[int, str]) -> None:
    """Raise ValueError when ``quantize_attention_matmuls`` is asked for (globally or by an
    override) but no layer it applies to has attention matmuls: never silently ignored."""
    requested = [names[id(m)] for m in candidates
                 if not config.is_skipped(names[id(m)]) and config.resolve(names[id(m)]).quantize_attention_matmuls]
    if requested and not any(hasattr(get_quant_module_class(m), 'enable_attention_matmul_quantization')
                             for m in candidates if names[id(m)] in requested):
        raise ValueError(f'quantize_attention_matmuls=True, but none of the {len(requested)} layer(s) it applies to '
                         f'(e.g. {requested[0]!r}) has attention matmuls (nn.MultiheadAttention); remove the '
                         'setting or point its override at attention layers')


def quantize_model(model: nn.Module, config: Union[QuantConfig, Mapping[str, Any], None] = None) -> List[str]:
    """Replace, in place, every quantizable layer of ``model`` by its quantized version.

    A layer is quantizable when its type (or a base class) is registered (see
    :func:`register_quant_module`) and its qualified name is not matched by ``config.skip``.
    Layers are converted children-first, so a nested quantizable layer (e.g. the
    ``out_proj`` of an ``nn.MultiheadAttention``) gets its own settings and entry. A module
    reachable under several names is converted once and replaced at every name.

    Args:
        model: any ``nn.Module`` (the root itself must not be a quantizable layer).
        config: a :class:`QuantConfig`, a dict for :meth:`QuantConfig.from_dict`, or None
            for the defaults (W4A8).
    Returns:
        The qualified names of the quantized layers in module registration order.
    Raises:
        RuntimeError: ``model`` already contains quantized layers (double quantization is
            refused rather than silently ignored; build a fresh model instead).
        ValueError: a skip/override pattern matches no quantizable layer, or the root
            module is itself quantizable.
        TypeError: a layer that is not skipped subclasses a registered float type but
            overrides its ``forward``/``_conv_forward`` (see
            :func:`~ptqat.quant.registry.check_quantizable`); nothing is converted then.
    """
    config = QuantConfig() if config is None else QuantConfig.from_dict(config)
    already = [n for n, _ in quantized_layers(model)]
    if already:
        raise RuntimeError(f'model is already quantized (e.g. {already[0]!r}); quantize_model must be called '
                           'once on a float model')
    if get_quant_module_class(model) is not None:
        raise ValueError(f'the root module ({type(model).__name__}) is itself a quantizable layer; wrap it in a '
                         'container (e.g. nn.Sequential) to quantize it in place')

    groups: List[List[str]] = []
    if config.share_input_quantizers or config.quantize_residual_adds:
        groups, adds, ruled = apply_placement_rules(model, bool(config.quantize_residual_adds))
        if not ruled:
            raise ValueError('share_input_quantizers / quantize_residual_adds is set, but no module of '
                             f'{type(model).__name__} has a Q/DQ placement rule (ptqat.quant.register_placement_rule; '
                             'ptqat.engine registers mmdet ResNet BasicBlock / Bottleneck and mmdet3d CenterHead)')
        if config.quantize_residual_adds and not adds:
            raise ValueError(f'quantize_residual_adds={config.quantize_residual_adds!r}, but {type(model).__name__} '
                             'has no residual block with a placement rule (e.g. mmdet ResNet BasicBlock / Bottleneck)')

    order: Dict[int, int] = {}
    names: Dict[int, str] = {}
    candidates: List[nn.Module] = []
    for i, (name, module) in enumerate(model.named_modules()):
        order.setdefault(id(module), i)
        if get_quant_module_class(module) is not None and id(module) not in names:
            names[id(module)] = name
            candidates.append(module)

    cand_names = [names[id(m)] for m in candidates]
    for kind, patterns in (('skip', config.skip), ('overrides', tuple(config.overrides))):
        for pattern in patterns:
            if not any(re.search(pattern, n) for n in cand_names):
                raise ValueError(f'{kind} pattern {pattern!r} matches no quantizable layer '
                                 f'(quantizable: {cand_names[:8]}{" ..." if len(cand_names) > 8 else ""})')

    for module in candidates:  # before anything is converted
        if not config.is_skipped(names[id(module)]):
            check_quantizable(module, names[id(module)])
    _check_attention_matmul_request(config, candidates, names)

    # Where each module is referenced: (parent, attribute name), duplicates included.
    refs: Dict[int, List[Tuple[nn.Module, str]]] = {}
    for parent in model.modules():
        for attr, child in parent._modules.items():
            if child is not None:
                refs.setdefault(id(child), []).append((parent, attr))

    model_device = _module_device(model)
    replaced: Dict[int, nn.Module] = {}
    # Children first: reverse pre-order visits every descendant before its ancestor.
    for module in sorted(candidates, key=lambda m: order[id(m)], reverse=True):
        name = names[id(module)]
        if config.is_skipped(name):
            continue
        spec = config.resolve(name)
        quant_cls = get_quant_module_class(module)
        children_before = dict(module._modules)
        new = quant_cls.from_float(module, spec.w_bits, spec.a_bits, spec.w_per_channel,
                                   w_init=spec.w_init, a_init=spec.a_init)
        # quantize_model decides about nested layers itself (skip/overrides): undo any child
        # conversion from_float did on its own.
        for attr, child in children_before.items():
            if child is not None and new._modules.get(attr) is not child and isinstance(
                    new._modules.get(attr), QuantModule) and get_quant_module_class(child) is not None:
                new._modules[attr] = child
        if spec.quantize_attention_matmuls and hasattr(new, 'enable_attention_matmul_quantization'):
            if spec.a_bits is None:
                raise ValueError(f'layer {name!r}: quantize_attention_matmuls needs activation bits, but the layer '
                                 'has a_bits=None / quantize_inputs=False')
            new.enable_attention_matmul_quantization(spec.a_bits, spec.a_init)
        if isinstance(new, QuantAdd) and config.quantize_residual_adds == 'residual':
            new.register_module('input_quantizer', None)   # the conv branch fuses into the add
        _set_activation_sign(new, spec.a_signed)
        device = _module_device(module) or model_device
        if device is not None:
            new.to(device)
        for parent, attr in refs.get(id(module), []):
            setattr(parent, attr, new)
        # the replaced module's children now hang below `new`
        for attr, child in new._modules.items():
            if child is not None:
                refs.setdefault(id(child), [])
                refs[id(child)] = [(p, a) for p, a in refs[id(child)] if p is not module] + [(new, attr)]
        replaced[id(module)] = new
    if config.share_input_quantizers:
        share_quantizer_groups(model, groups)
    return [names[id(m)] for m in candidates if id(m) in replaced]
