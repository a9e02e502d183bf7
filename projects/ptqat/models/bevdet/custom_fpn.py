"""CustomFPN: mmdet FPN with output convs only for the returned levels."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class CustomFPN(BaseModule):
    """Feature pyramid neck as used by BEVDet's image encoder.

    It is mmdet's ``FPN`` (1x1 lateral convs, nearest-neighbour top-down
    addition, 3x3 output convs) with two differences:

    * ``fpn_convs`` are built only for the levels in ``out_ids`` (so BEVDet's
      checkpoint has ``fpn_convs.0`` only);
    * ``forward`` returns a single tensor when one level is requested.

    Args:
        in_channels (list[int]): Channels of each input level.
        out_channels (int): Channels of every output.
        num_outs (int): Number of outputs. Extra outputs beyond ``out_ids``
            are made by stride-2 max pooling of the last one.
        start_level (int): First input level used. Defaults to 0.
        end_level (int): Last input level used (exclusive); -1 = all.
        out_ids (sequence[int]): Levels (relative to ``start_level``) that
            get an output conv and are returned. Defaults to ``[0]``.
        no_norm_on_lateral (bool): No norm on the lateral convs.
        conv_cfg, norm_cfg, act_cfg (dict, optional): ConvModule configs.
            BEVDet uses none, so every conv has a bias.
        upsample_cfg (dict): ``F.interpolate`` kwargs for the top-down path.
        init_cfg (dict): Defaults to Xavier-uniform on the convs.

    Shapes (BEVDet-R50): inputs ``[(BN, 1024, 16, 44), (BN, 2048, 8, 22)]``
    -> output ``(BN, 256, 16, 44)``.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 out_ids: Sequence[int] = (0, ),
                 no_norm_on_lateral: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg: Optional[dict] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        assert isinstance(in_channels, (list, tuple))
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.out_ids = list(out_ids)
        self.upsample_cfg = dict(upsample_cfg)
        if end_level == -1 or end_level == self.num_ins:
            self.backbone_end_level = self.num_ins
        else:
            assert end_level <= self.num_ins
            self.backbone_end_level = end_level
        self.start_level = start_level
        num_levels = self.backbone_end_level - start_level
        assert all(0 <= i < num_levels for i in self.out_ids), \
            f'out_ids {self.out_ids} must index the {num_levels} levels'
        assert num_outs >= len(self.out_ids)

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(
                ConvModule(
                    in_channels[i],
                    out_channels,
                    1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg if not no_norm_on_lateral else None,
                    act_cfg=act_cfg,
                    inplace=False))
            if i - start_level in self.out_ids:
                self.fpn_convs.append(
                    ConvModule(
                        out_channels,
                        out_channels,
                        3,
                        padding=1,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg,
                        inplace=False))

    def forward(self, inputs: Sequence[Tensor]
                ) -> Union[Tensor, Tuple[Tensor, ...]]:
        """Returns a tensor (one output) or a tuple of tensors."""
        assert len(inputs) == len(self.in_channels)
        laterals = [
            conv(inputs[i + self.start_level])
            for i, conv in enumerate(self.lateral_convs)
        ]
        # top-down path (out-of-place adds keep autograd/tracing simple)
        for i in range(len(laterals) - 1, 0, -1):
            if 'scale_factor' in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(
                    laterals[i],
                    size=laterals[i - 1].shape[2:],
                    **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up
        # fpn_convs[k] belongs to sorted(out_ids)[k] (built in level order)
        conv_of_level = {
            lvl: self.fpn_convs[k]
            for k, lvl in enumerate(sorted(self.out_ids))
        }
        outs = [conv_of_level[i](laterals[i]) for i in self.out_ids]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        if len(outs) == 1:
            return outs[0]
        return tuple(outs)
