"""Q/DQ placement rules of the OpenMMLab modules (``QuantConfig.share_input_quantizers`` /
``quantize_residual_adds``, see :mod:`ptqat.quant.placement`), registered on import.

* mmdet ``BasicBlock`` / ``Bottleneck`` (the image backbones, BEVDet's ``CustomResNet`` BEV
  encoder, BEVDepth's DepthNet): ``conv1`` and the first conv of ``downsample`` read the block
  input; with a residual add installed, a block without ``downsample`` also adds the block input
  itself, so its shortcut quantizer joins that group. ``install_add`` turns the block into a
  subclass whose forward is mmdet's, with ``out += identity`` written as
  ``out = self.residual_add(out, identity)``.
* mmdet3d ``CenterHead`` (and ``BEVDetCenterHead``, which keeps its forward): every task head's
  every branch (``reg``, ``height``, ..., ``heatmap``) starts with a conv on the output of
  ``shared_conv``: one group.
"""
from __future__ import annotations

from typing import List, Optional

import torch.utils.checkpoint as cp
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet3d.models.dense_heads.centerpoint_head import CenterHead, SeparateHead
from torch import Tensor, nn

from ptqat.quant import Add, get_quant_module_class
from ptqat.quant.placement import PlacementRule, register_placement_rule

__all__ = ['QAddBasicBlock', 'QAddBottleneck']


def _first_layer(module: nn.Module, path: str) -> Optional[str]:
    """Path (prefixed with ``path``) of the quantizable layer that reads ``module``'s input:
    ``module`` itself or the first leaf of a Sequential / ConvModule; None when that first
    leaf is something else (e.g. the AvgPool of an ``avg_down`` downsample)."""
    if get_quant_module_class(module) is not None:
        return path
    for name, child in module.named_children():
        return _first_layer(child, f'{path}.{name}')
    return None


class QAddBasicBlock(BasicBlock):
    """mmdet ``BasicBlock`` whose residual add is the module ``residual_add`` (same output)."""

    def forward(self, x: Tensor) -> Tensor:

        def _inner_forward(x):
            identity = x
            out = self.conv1(x)
            out = self.norm1(out)
            out = self.relu(out)
            out = self.conv2(out)
            out = self.norm2(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            return self.residual_add(out, identity)

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class QAddBottleneck(Bottleneck):
    """mmdet ``Bottleneck`` whose residual add is the module ``residual_add`` (same output)."""

    def forward(self, x: Tensor) -> Tensor:

        def _inner_forward(x):
            identity = x
            out = self.conv1(x)
            out = self.norm1(out)
            out = self.relu(out)
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv1_plugin_names)
            out = self.conv2(out)
            out = self.norm2(out)
            out = self.relu(out)
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = self.conv3(out)
            out = self.norm3(out)
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv3_plugin_names)
            if self.downsample is not None:
                identity = self.downsample(x)
            return self.residual_add(out, identity)

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x)
        else:
            out = _inner_forward(x)
        return self.relu(out)


def _block_groups(block: nn.Module, add_installed: bool) -> List[list]:
    readers = [('conv1', 'input_quantizer')]
    if block.downsample is not None:
        first = _first_layer(block.downsample, 'downsample')
        if first is not None:
            readers.append((first, 'input_quantizer'))
    elif add_installed:
        readers.append(('residual_add', 'residual_quantizer'))
    return [readers]


def _installer(cls: type):
    def install(block: nn.Module) -> None:
        if not isinstance(getattr(block, 'residual_add', None), Add):
            block.residual_add = Add()
        block.__class__ = cls
    return install


for _float, _qadd in ((BasicBlock, QAddBasicBlock), (Bottleneck, QAddBottleneck)):
    register_placement_rule(_float, PlacementRule(_block_groups, _installer(_qadd)))
    # a block already rewritten (quantize_model raised after installing, and runs again) keeps its rule
    register_placement_rule(_qadd, PlacementRule(_block_groups, _installer(_qadd)))


def _head_groups(head: nn.Module, add_installed: bool) -> List[list]:
    group = []
    for t, task in enumerate(head.task_heads):
        if type(task).forward is not SeparateHead.forward:
            raise TypeError(f'task_heads.{t} ({type(task).__qualname__}) overrides SeparateHead.forward: '
                            'register a placement rule for the head (ptqat.quant.register_placement_rule)')
        for branch in task.heads:
            first = _first_layer(getattr(task, branch), f'task_heads.{t}.{branch}')
            if first is not None:
                group.append((first, 'input_quantizer'))
    return [group]


register_placement_rule(CenterHead, PlacementRule(_head_groups, None, ('forward', 'forward_single')))
