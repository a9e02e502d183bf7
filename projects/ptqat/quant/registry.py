"""Mapping from float layer types to their quantized replacements.

``quantize_model`` asks :func:`get_quant_module_class` for every module. The lookup walks the
module type's MRO, so the exact type wins over a registered base class (e.g. a model package
can register ``ModulatedDeformConv2dPack`` while every other ``nn.Conv2d`` subclass still maps
to :class:`QuantConv2d`, and ``NonDynamicallyQuantizableLinear`` maps to :class:`QuantLinear`
through ``nn.Linear``). Modules that are already quantized are never matched.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Type, Union

import torch.nn as nn

from .layers import (MatMul, QuantConv1d, QuantConv2d, QuantConvTranspose2d, QuantLinear, QuantMatMul,
                     QuantModule, QuantMultiheadAttention)

__all__ = ['get_quant_module_class', 'register_quant_module', 'registered_quant_modules',
           'unregister_quant_module']

_REGISTRY: Dict[type, type] = {}


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


def get_quant_module_class(module_or_cls: Union[nn.Module, Type[nn.Module]]) -> Optional[type]:
    """The quantized class for a module (or module type): the exact type's registration if
    any, else the nearest registered base class in the MRO; None if none or if it is
    already quantized."""
    cls = module_or_cls if isinstance(module_or_cls, type) else type(module_or_cls)
    if issubclass(cls, QuantModule):
        return None
    for klass in cls.__mro__:
        quant_cls = _REGISTRY.get(klass)
        if quant_cls is not None:
            return quant_cls
    return None


for _f, _q in ((nn.Conv1d, QuantConv1d), (nn.Conv2d, QuantConv2d), (nn.ConvTranspose2d, QuantConvTranspose2d),
               (nn.Linear, QuantLinear), (nn.MultiheadAttention, QuantMultiheadAttention), (MatMul, QuantMatMul)):
    register_quant_module(_f, _q)
del _f, _q
