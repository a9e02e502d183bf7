"""CustomResNet: BEVDet's BEV-encoder backbone."""
from typing import List, Optional, Sequence

import torch.utils.checkpoint as cp
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class CustomResNet(BaseModule):
    """A plain stack of ResNet stages on the BEV feature map.

    Stage ``i`` has ``num_layer[i]`` blocks (mmdet ``BasicBlock`` or
    ``Bottleneck``).  The first block of each stage changes the width and
    stride; its ``downsample`` (shortcut) is a bare
    ``nn.Conv2d(cin, cout, 3, stride, 1)`` **with bias and no norm**, which
    gives the official key ``layers.{s}.0.downsample.{weight,bias}``.

    Args:
        numC_input (int): Input channels.
        num_layer (sequence[int]): Blocks per stage. Defaults to [2, 2, 2].
        num_channels (sequence[int], optional): Output channels per stage;
            defaults to ``numC_input * 2**(i+1)``.
        stride (sequence[int]): Stride of each stage. Defaults to [2, 2, 2].
        backbone_output_ids (sequence[int], optional): Stages whose outputs
            are returned; all by default.
        norm_cfg (dict): Norm config of the blocks.
        with_cp (bool): Gradient checkpointing per stage (training only).
        block_type (str): ``'Basic'`` (BEVDet) or ``'BottleNeck'``.

    Shapes (BEVDet-R50): ``(B, 64, 128, 128)`` ->
    ``[(B, 128, 64, 64), (B, 256, 32, 32), (B, 512, 16, 16)]``.
    """

    def __init__(self,
                 numC_input: int,
                 num_layer: Sequence[int] = (2, 2, 2),
                 num_channels: Optional[Sequence[int]] = None,
                 stride: Sequence[int] = (2, 2, 2),
                 backbone_output_ids: Optional[Sequence[int]] = None,
                 norm_cfg: dict = dict(type='BN'),
                 with_cp: bool = False,
                 block_type: str = 'Basic',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        assert len(num_layer) == len(stride)
        if num_channels is None:
            num_channels = [numC_input * 2**(i + 1)
                            for i in range(len(num_layer))]
        assert len(num_channels) == len(num_layer)
        self.backbone_output_ids = (
            list(range(len(num_layer)))
            if backbone_output_ids is None else list(backbone_output_ids))
        self.with_cp = with_cp

        layers = []
        cin = numC_input
        for i, n_blocks in enumerate(num_layer):
            cout = num_channels[i]
            shortcut = nn.Conv2d(cin, cout, 3, stride[i], 1)
            if block_type == 'Basic':
                blocks = [
                    BasicBlock(
                        cin,
                        cout,
                        stride=stride[i],
                        downsample=shortcut,
                        norm_cfg=norm_cfg)
                ]
                blocks += [
                    BasicBlock(cout, cout, norm_cfg=norm_cfg)
                    for _ in range(n_blocks - 1)
                ]
            elif block_type == 'BottleNeck':
                assert cout % Bottleneck.expansion == 0
                blocks = [
                    Bottleneck(
                        cin,
                        cout // Bottleneck.expansion,
                        stride=stride[i],
                        downsample=shortcut,
                        norm_cfg=norm_cfg)
                ]
                blocks += [
                    Bottleneck(
                        cout, cout // Bottleneck.expansion, norm_cfg=norm_cfg)
                    for _ in range(n_blocks - 1)
                ]
            else:
                raise ValueError(f'unknown block_type {block_type!r}')
            layers.append(nn.Sequential(*blocks))
            cin = cout
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> List[Tensor]:
        feats = []
        for lid, layer in enumerate(self.layers):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
            if lid in self.backbone_output_ids:
                feats.append(x)
        return feats
