"""Quantized mmcv layers, registered with :func:`ptqat.quant.register_quant_module`.

Importing this module (``ptqat.engine`` does) makes ``quantize_model`` convert them.
Each block below is one mmcv layer; keep them independent.
"""
from typing import Optional

import torch
from torch import Tensor

from ptqat.quant import register_quant_module
from ptqat.quant.layers import QuantModule

# ---------------------------------------------------------------------------------------------
# DCNv2: mmcv ModulatedDeformConv2dPack (BEVFormer's R101-DCN: conv2 of layer3/layer4 blocks)
# ---------------------------------------------------------------------------------------------
from mmcv.ops import ModulatedDeformConv2dPack  # noqa: E402
from mmcv.ops.modulated_deform_conv import modulated_deform_conv2d  # noqa: E402


class QuantModulatedDeformConv2dPack(QuantModule, ModulatedDeformConv2dPack):
    """mmcv's DCNv2 with a fake-quantized weight (per output channel, axis 0) and input.

    ``conv_offset`` (the ``nn.Conv2d`` predicting the 18 offsets and 9 mask logits) is a
    child layer and is quantized separately by ``quantize_model`` (its own entry, its own
    input quantizer on the same input tensor); the offsets and the sigmoid mask themselves
    stay float. The deformable sampling runs on the quantized input and weight:
    ``modulated_deform_conv2d(q(x), offset, mask, q(W), bias, ...)``. Keys as the float layer
    (``weight``, ``bias``, ``conv_offset.*``) plus the quantizers.
    """

    _float_cls = ModulatedDeformConv2dPack

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, H', W')``."""
        out = self.conv_offset(x)
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        mask = torch.sigmoid(mask)
        return modulated_deform_conv2d(self.quant_input(x), offset, mask, self.quant_weight(),
                                       self.bias, self.stride, self.padding, self.dilation,
                                       self.groups, self.deform_groups)


register_quant_module(ModulatedDeformConv2dPack, QuantModulatedDeformConv2dPack)

__all__ = ['QuantModulatedDeformConv2dPack']


# ---------------------------------------------------------------------------------------------
# mmcv's empty-tensor wrappers: mmcv.cnn.bricks.wrappers.{Linear, Conv2d, Conv3d, ConvTranspose2d}
# ---------------------------------------------------------------------------------------------
# They override ``forward`` only to return an empty tensor for an empty input on torch <= 1.4
# (Conv) / <= 1.5 (Linear); on the torch this project runs (>= 2.0) their forward is exactly
# ``super().forward(x)``. So the generic quantized layers compute what they compute, and they are
# registered explicitly (a subclass overriding ``forward`` is otherwise refused by
# ``ptqat.quant.check_quantizable``). mmcv's FFN (BEVFormer, SparseBEV) builds its Linears from
# these wrappers; ConvModule(conv_cfg=dict(type='Conv3d')) (the occupancy head BEVOCCHead3D) too.
from mmcv.cnn.bricks import wrappers as _mmcv_wrappers  # noqa: E402
from ptqat.quant import QuantConv2d, QuantConv3d, QuantConvTranspose2d, QuantLinear  # noqa: E402

MMCV_WRAPPER_QUANT_CLASSES = {
    _mmcv_wrappers.Linear: QuantLinear,
    _mmcv_wrappers.Conv2d: QuantConv2d,
    _mmcv_wrappers.Conv3d: QuantConv3d,
    _mmcv_wrappers.ConvTranspose2d: QuantConvTranspose2d,
}
if not _mmcv_wrappers.obsolete_torch_version(_mmcv_wrappers.TORCH_VERSION, (1, 5)):
    for _float_cls, _quant_cls in MMCV_WRAPPER_QUANT_CLASSES.items():
        register_quant_module(_float_cls, _quant_cls)

__all__ += ['MMCV_WRAPPER_QUANT_CLASSES']
