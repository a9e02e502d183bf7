"""FPN_LSS: BEVDet's BEV-encoder neck."""
from typing import List, Optional, Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class FPN_LSS(BaseModule):
    """Fuse a coarse and a fine BEV map and upsample to the BEV grid size.

    ``x = conv(cat(feats[i0], up(feats[i1])))`` and, with ``extra_upsample``,
    ``x = up2(x)``.  Module layout (official key names):

    * ``conv``: Conv3x3 (no bias) - BN - ReLU - Conv3x3 (no bias) - BN - ReLU,
      ``in_channels -> out_channels * f -> out_channels * f`` where
      ``f = 2`` with ``extra_upsample`` else 1;
    * ``up2``: bilinear x``extra_upsample`` (align_corners=True) - Conv3x3
      (no bias) - BN - ReLU - Conv1x1 (bias), ``out_channels*f -> out``;
    * optional ``lateral_conv`` (1x1, BN, ReLU) on the fine map and
      ``input_conv`` (1x1, BN, ReLU) on the concatenation.

    Args:
        in_channels (int): Channels of the concatenation (fine + coarse).
        out_channels (int): Output channels.
        scale_factor (int): Upsampling of the coarse map. Defaults to 4.
        input_feature_index (tuple[int, int]): (fine, coarse) indices into
            the input list. Defaults to (0, 2).
        norm_cfg (dict): Norm config.
        extra_upsample (int, optional): Final upsampling; None disables
            ``up2``. Defaults to 2.
        lateral (int, optional): Channels of the fine map to pass through a
            lateral conv. Defaults to None (off).
        use_input_conv (bool): Defaults to False.

    Shapes (BEVDet-R50): ``[(B,128,64,64), (B,256,32,32), (B,512,16,16)]``
    -> ``(B, 256, 128, 128)``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factor: int = 4,
                 input_feature_index: Sequence[int] = (0, 2),
                 norm_cfg: dict = dict(type='BN'),
                 extra_upsample: Optional[int] = 2,
                 lateral: Optional[int] = None,
                 use_input_conv: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.input_feature_index = tuple(input_feature_index)
        self.extra_upsample = extra_upsample is not None
        self.up = nn.Upsample(
            scale_factor=scale_factor, mode='bilinear', align_corners=True)
        mid = out_channels * (2 if self.extra_upsample else 1)

        if use_input_conv:
            self.input_conv = nn.Sequential(
                nn.Conv2d(in_channels, mid, kernel_size=1, bias=False),
                build_norm_layer(norm_cfg, mid, postfix=0)[1],
                nn.ReLU(inplace=True))
            in_channels = mid
        else:
            self.input_conv = None

        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            build_norm_layer(norm_cfg, mid, postfix=0)[1],
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False),
            build_norm_layer(norm_cfg, mid, postfix=0)[1],
            nn.ReLU(inplace=True))
        if self.extra_upsample:
            self.up2 = nn.Sequential(
                nn.Upsample(
                    scale_factor=extra_upsample,
                    mode='bilinear',
                    align_corners=True),
                nn.Conv2d(
                    mid, out_channels, kernel_size=3, padding=1, bias=False),
                build_norm_layer(norm_cfg, out_channels, postfix=0)[1],
                nn.ReLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, kernel_size=1))
        self.lateral = lateral is not None
        if self.lateral:
            self.lateral_conv = nn.Sequential(
                nn.Conv2d(lateral, lateral, kernel_size=1, bias=False),
                build_norm_layer(norm_cfg, lateral, postfix=0)[1],
                nn.ReLU(inplace=True))

    def forward(self, feats: List[Tensor]) -> Tensor:
        fine = feats[self.input_feature_index[0]]
        coarse = feats[self.input_feature_index[1]]
        if self.lateral:
            fine = self.lateral_conv(fine)
        x = torch.cat([fine, self.up(coarse)], dim=1)
        if self.input_conv is not None:
            x = self.input_conv(x)
        x = self.conv(x)
        if self.extra_upsample:
            x = self.up2(x)
        return x
