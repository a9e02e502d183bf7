"""Mapping from float layer types to their quantized replacements.

``quantize_model`` asks :func:`get_quant_module_class` for every module. The lookup walks the
module type's MRO, so the exact type wins over a registered base class (e.g. a model package
can register ``ModulatedDeformConv2dPack`` while every other ``nn.Conv2d`` subclass still maps
to :class:`QuantConv2d`, and ``NonDynamicallyQuantizableLinear`` maps to :class:`QuantLinear`
through ``nn.Linear``). Modules that are already quantized are never matched.

A subclass reaches a base class's quantized version only when it computes what the base
computes: if it overrides one of :data:`FORWARD_METHODS` (e.g. mmcv's
``Conv2dAdaptivePadding`` or ``ConvWS2d``), the quantized base class would silently run the
base's computation instead, so :func:`check_quantizable` raises instead; register a quantized
class for it with :func:`register_quant_module` (or skip the layer).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Type, Union

import torch.nn as nn

from .layers import (Add, MatMul, QuantAdd, QuantConv1d, QuantConv2d, QuantConv3d, QuantConvTranspose2d, QuantLinear,
                     QuantMatMul, QuantModule, QuantMultiheadAttention)

__all__ = ['FORWARD_METHODS', 'check_quantizable', 'get_quant_module_class', 'register_quant_module',
           'registered_quant_modules', 'unregister_quant_module']

_REGISTRY: Dict[type, type] = {}

#: Methods that define what a layer computes. A subclass overriding one of them is not mapped
#: to the quantized version of its registered base class.
FORWARD_METHODS = ('forward', '_conv_forward')


def register_quant_module(float_cls: type, quant_cls: Optional[type] = None, *, force: bool = False
                          ) -> Union[type, Callable[[type], type]]:
    """Register ``quant_cls`` as the quantized version of ``float_cls``.

    ``quant_cls`` must be a :class:`QuantModule` subclass with a ``from_float`` classmethod
    accepting ``(module, w_bits, a_bits, w_per_channel, *, w_init, a_init)``. Re-registering
    a float type with a different class raises ValueError unless ``force=True``. Without
    ``quant_cls`` it returns a class decorator. Returns ``quant_cls``.
    """
    if quant_cls is None:
        return lambda cls: register_quant_module(float_cls, cls, force=force)  # type: ignore[return-value]
    if not (isinstance(float_cls, type) and issubclass(float_cls, nn.Module)):
        raise TypeError(f'float_cls must be an nn.Module subclass, got {float_cls!r}')
    if not (isinstance(quant_cls, type) and issubclass(quant_cls, QuantModule)
            and issubclass(quant_cls, nn.Module) and callable(getattr(quant_cls, 'from_float', None))):
        raise TypeError(f'quant_cls must be a QuantModule/nn.Module subclass with from_float, got {quant_cls!r}')
    if issubclass(float_cls, QuantModule):
        raise TypeError(f'{float_cls.__name__} is already a quantized layer')
    old = _REGISTRY.get(float_cls)
    if old is not None and old is not quant_cls and not force:
        raise ValueError(f'{float_cls.__name__} is already registered to {old.__name__}; pass force=True')
    _REGISTRY[float_cls] = quant_cls
    return quant_cls


def unregister_quant_module(float_cls: type) -> None:
    """Remove ``float_cls`` from the registry (KeyError if absent)."""
    del _REGISTRY[float_cls]


def registered_quant_modules() -> Dict[type, type]:
    """A copy of the registry ``{float type: quantized type}``."""
    return dict(_REGISTRY)


def _registered_base(cls: type) -> Optional[type]:
    """The nearest class in ``cls``'s MRO that is registered (``cls`` itself first), or None."""
    return next((klass for klass in cls.__mro__ if klass in _REGISTRY), None)


def get_quant_module_class(module_or_cls: Union[nn.Module, Type[nn.Module]]) -> Optional[type]:
    """The quantized class for a module (or module type): the exact type's registration if
    any, else the nearest registered base class in the MRO; None if none or if it is
    already quantized. (Whether a subclass may use its base's quantized class is checked by
    :func:`check_quantizable`.)"""
    cls = module_or_cls if isinstance(module_or_cls, type) else type(module_or_cls)
    if issubclass(cls, QuantModule):
        return None
    base = _registered_base(cls)
    return None if base is None else _REGISTRY[base]


def overridden_forward_methods(cls: type) -> List[str]:
    """``'Class.method'`` for each of :data:`FORWARD_METHODS` that a class between ``cls``
    (included) and its nearest registered base (excluded) defines; ``[]`` when ``cls`` is
    registered itself or not quantizable."""
    base = _registered_base(cls)
    if base is None or base is cls:
        return []
    found = []
    for klass in cls.__mro__[:cls.__mro__.index(base)]:
        found += [f'{klass.__name__}.{m}' for m in FORWARD_METHODS if m in vars(klass)]
    return found


def check_quantizable(module_or_cls: Union[nn.Module, Type[nn.Module]], name: str = '') -> None:
    """Raise TypeError when the module's type would be quantized through a registered base
    class although it overrides that base's computation (see :data:`FORWARD_METHODS`): the
    quantized base class would silently drop the override (e.g. mmcv's
    ``Conv2dAdaptivePadding`` padding, ``ConvWS2d`` weight standardisation)."""
    cls = module_or_cls if isinstance(module_or_cls, type) else type(module_or_cls)
    overrides = overridden_forward_methods(cls)
    if overrides:
        base = _registered_base(cls)
        where = f'layer {name!r}: ' if name else ''
        raise TypeError(
            f'{where}{cls.__module__}.{cls.__qualname__} subclasses {base.__name__} but overrides '
            f'{", ".join(overrides)}; quantizing it as {_REGISTRY[base].__name__} would drop that code and '
            f'change its output. Register a quantized version with ptqat.quant.register_quant_module('
            f'{cls.__name__}, QuantClass), or keep the layer float with QuantConfig.skip')


for _f, _q in ((nn.Conv1d, QuantConv1d), (nn.Conv2d, QuantConv2d), (nn.Conv3d, QuantConv3d),
               (nn.ConvTranspose2d, QuantConvTranspose2d), (nn.Linear, QuantLinear),
               (nn.MultiheadAttention, QuantMultiheadAttention), (MatMul, QuantMatMul), (Add, QuantAdd)):
    register_quant_module(_f, _q)
del _f, _q
