"""BEVDepth's camera-aware depth network (BEVDet dev3.0 ``DepthNet``).

Module and attribute names follow the official checkpoints
(``img_view_transformer.depth_net.*``), see :class:`DepthNet`.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmdet.models.backbones.resnet import BasicBlock
from torch import Tensor, nn

#: length of the per-camera parameter vector (see
#: ``LSSViewTransformerBEVDepth.get_mlp_input``)
MLP_INPUT_DIM = 27


class Mlp(nn.Module):
    """``fc1 -> act -> drop -> fc2 -> drop`` on the last dimension.

    Args:
        in_features (int): Input features.
        hidden_features (int, optional): Width of ``fc1``; defaults to
            ``in_features``.
        out_features (int, optional): Output features; defaults to
            ``in_features``.
        act_layer (type): Activation class. Defaults to ``nn.ReLU``.
        drop (float): Dropout probability after both layers. Defaults to 0.

    Shapes: ``(..., in_features)`` -> ``(..., out_features)``.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: Optional[int] = None,
                 out_features: Optional[int] = None,
                 act_layer: type = nn.ReLU,
                 drop: float = 0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(x))


class SELayer(nn.Module):
    """Squeeze-and-excitation gate driven by an external vector.

    ``out = x * sigmoid(conv_expand(relu(conv_reduce(x_se))))``, where
    ``x_se`` is the camera embedding ``(M, C, 1, 1)`` (broadcast over the
    feature map). Both convs are ``1x1`` ``C -> C`` with bias.

    Shapes: ``x (M, C, H, W)``, ``x_se (M, C, 1, 1)`` -> ``(M, C, H, W)``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, channels, 1, bias=True)
        self.act1 = nn.ReLU()
        self.conv_expand = nn.Conv2d(channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor, x_se: Tensor) -> Tensor:
        x_se = self.conv_expand(self.act1(self.conv_reduce(x_se)))
        return x * self.gate(x_se)


class _ASPPModule(nn.Module):
    """``atrous_conv`` (no bias) -> ``bn`` -> ReLU."""

    def __init__(self, inplanes: int, planes: int, kernel_size: int,
                 padding: int, dilation: int):
        super().__init__()
        self.atrous_conv = nn.Conv2d(
            inplanes,
            planes,
            kernel_size=kernel_size,
            stride=1,
            padding=padding,
            dilation=dilation,
            bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab v3) as used by BEVDepth.

    Branches ``aspp1`` (1x1) and ``aspp2..4`` (3x3, dilations 6/12/18) and
    ``global_avg_pool`` (``0``: pooling, ``1``: 1x1 conv, ``2``: BN, ``3``:
    ReLU; upsampled bilinearly back), each ``mid_channels`` wide; their
    concatenation (``5 * mid_channels``) goes through ``conv1`` (1x1, no
    bias) -> ``bn1`` -> ReLU -> ``dropout`` (p=0.5) back to ``inplanes``.

    Args:
        inplanes (int): Input (and output) channels.
        mid_channels (int): Width of each branch. Defaults to 256.
        dilations (sequence[int]): Dilations of the four branches.

    Shapes: ``(M, inplanes, H, W)`` -> ``(M, inplanes, H, W)``.
    """

    def __init__(self,
                 inplanes: int,
                 mid_channels: int = 256,
                 dilations: Sequence[int] = (1, 6, 12, 18)):
        super().__init__()
        if len(dilations) != 4:
            raise ValueError(f'ASPP needs 4 dilations, got {dilations}')
        self.aspp1 = _ASPPModule(inplanes, mid_channels, 1, 0, dilations[0])
        self.aspp2 = _ASPPModule(inplanes, mid_channels, 3, dilations[1],
                                 dilations[1])
        self.aspp3 = _ASPPModule(inplanes, mid_channels, 3, dilations[2],
                                 dilations[2])
        self.aspp4 = _ASPPModule(inplanes, mid_channels, 3, dilations[3],
                                 dilations[3])
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(inplanes, mid_channels, 1, stride=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(),
        )
        self.conv1 = nn.Conv2d(5 * mid_channels, inplanes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.aspp1(x)
        x2 = self.aspp2(x)
        x3 = self.aspp3(x)
        x4 = self.aspp4(x)
        x5 = F.interpolate(
            self.global_avg_pool(x),
            size=x4.shape[2:],
            mode='bilinear',
            align_corners=True)
        x = torch.cat((x1, x2, x3, x4, x5), dim=1)
        x = self.relu(self.bn1(self.conv1(x)))
        return self.dropout(x)


class DepthNet(nn.Module):
    """BEVDepth's depth/context network conditioned on camera parameters.

    Official sub-modules (``state_dict`` names):

    - ``reduce_conv``: ``0`` Conv3x3(in -> mid, bias), ``1`` BN, ``2`` ReLU;
    - ``bn``: ``BatchNorm1d(27)`` on the camera vector ``mlp_input``;
    - ``context_mlp`` / ``depth_mlp``: :class:`Mlp` ``27 -> mid -> mid``;
    - ``context_se`` / ``depth_se``: :class:`SELayer` (mid);
    - ``context_conv``: Conv1x1(mid -> context_channels, bias);
    - ``depth_conv``: ``0..2`` mmdet ``BasicBlock(mid, mid)``, ``3``
      :class:`ASPP` (if ``use_aspp``), then an mmcv ``DCN`` (if
      ``use_dcn``), last a Conv1x1(mid -> depth_channels, bias).

    ``forward``: ``x = reduce_conv(x)``; ``m = bn(mlp_input)``;
    ``context = context_conv(context_se(x, context_mlp(m)))``;
    ``depth = depth_conv(depth_se(x, depth_mlp(m)))``; returns
    ``cat(depth logits, context)``.

    Args:
        in_channels (int): Channels of the image feature.
        mid_channels (int): Internal width (upstream: ``in_channels``).
        context_channels (int): Output context channels (``C``).
        depth_channels (int): Number of depth bins (``D``).
        use_dcn (bool): Append a deformable conv (mmcv ``DCN``, 4 groups)
            before the last conv; needs mmcv built with ops. Defaults to
            False (the BEVDepth4D configs).
        use_aspp (bool): Use :class:`ASPP`. Defaults to True.
        with_cp (bool): Gradient checkpointing of ``depth_conv`` in training.
        aspp_mid_channels (int): ASPP branch width; ``< 0`` means
            ``mid_channels``. Defaults to -1.

    Shapes: ``x (M, in_channels, H, W)``, ``mlp_input (M, 27)`` (any leading
    dims with ``M`` elements in total) -> ``(M, D + C, H, W)``.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 context_channels: int,
                 depth_channels: int,
                 use_dcn: bool = False,
                 use_aspp: bool = True,
                 with_cp: bool = False,
                 aspp_mid_channels: int = -1):
        super().__init__()
        self.reduce_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 3, stride=1, padding=1),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
        )
        self.context_conv = nn.Conv2d(
            mid_channels, context_channels, 1, stride=1, padding=0)
        self.bn = nn.BatchNorm1d(MLP_INPUT_DIM)
        self.depth_mlp = Mlp(MLP_INPUT_DIM, mid_channels, mid_channels)
        self.depth_se = SELayer(mid_channels)
        self.context_mlp = Mlp(MLP_INPUT_DIM, mid_channels, mid_channels)
        self.context_se = SELayer(mid_channels)
        layers = [BasicBlock(mid_channels, mid_channels) for _ in range(3)]
        if use_aspp:
            if aspp_mid_channels < 0:
                aspp_mid_channels = mid_channels
            layers.append(ASPP(mid_channels, aspp_mid_channels))
        if use_dcn:
            layers.append(self._build_dcn(mid_channels))
        layers.append(
            nn.Conv2d(mid_channels, depth_channels, 1, stride=1, padding=0))
        self.depth_conv = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.context_channels = context_channels
        self.depth_channels = depth_channels
        self.with_cp = with_cp

    @staticmethod
    def _build_dcn(channels: int) -> nn.Module:
        try:
            from mmcv.ops import DeformConv2dPack
        except (ImportError, ModuleNotFoundError) as exc:
            raise RuntimeError(
                'DepthNet(use_dcn=True) needs mmcv built with ops '
                f'(mmcv.ops.DeformConv2dPack): {exc}; use use_dcn=False'
            ) from exc
        return DeformConv2dPack(
            channels, channels, 3, padding=1, groups=4, im2col_step=128)

    def forward(self, x: Tensor, mlp_input: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'DepthNet expects x of shape (M, {self.in_channels}, H, W), '
                f'got {tuple(x.shape)}')
        mlp_input = mlp_input.reshape(-1, mlp_input.shape[-1])
        if mlp_input.shape != (x.shape[0], MLP_INPUT_DIM):
            raise ValueError(
                f'mlp_input must hold {MLP_INPUT_DIM} values for each of the '
                f'{x.shape[0]} feature maps, got {tuple(mlp_input.shape)}')
        mlp_input = self.bn(mlp_input.to(x.dtype))
        x = self.reduce_conv(x)
        context_se = self.context_mlp(mlp_input)[..., None, None]
        context = self.context_conv(self.context_se(x, context_se))
        depth_se = self.depth_mlp(mlp_input)[..., None, None]
        depth = self.depth_se(x, depth_se)
        if self.with_cp and self.training and depth.requires_grad:
            depth = cp.checkpoint(self.depth_conv, depth, use_reentrant=False)
        else:
            depth = self.depth_conv(depth)
        return torch.cat([depth, context], dim=1)
