"""LSS view transformer with BEVDepth's camera-aware DepthNet."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmdet3d.registry import MODELS
from ..bevdet.lss_view_transformer import LSSViewTransformer
from .depth_net import MLP_INPUT_DIM, DepthNet


@MODELS.register_module()
class LSSViewTransformerBEVDepth(LSSViewTransformer):
    r"""BEVDepth's LSS view transformer (BEVDet dev3.0).

    The same frustum, geometry and splatting as :class:`LSSViewTransformer`;
    only :meth:`lift` changes: ``depth_net`` is a :class:`DepthNet`
    ``(in_channels, mid=in_channels, out_channels, D)`` that also sees a
    27-value camera vector per image (:meth:`get_mlp_input`). Depth
    supervision (:meth:`get_depth_loss`, inherited) is on by default with
    BEVDepth's weight 3.0.

    Args:
        loss_depth_weight (float): Weight of the depth loss. Defaults to 3.0.
        depthnet_cfg (dict, optional): Extra :class:`DepthNet` arguments
            (``use_dcn``, ``use_aspp``, ``with_cp``, ``aspp_mid_channels``,
            and ``mid_channels``, which defaults to ``in_channels`` as
            upstream). The BEVDepth4D configs use
            ``dict(use_dcn=False, aspp_mid_channels=96)``.
        **kwargs: :class:`LSSViewTransformer` arguments (``grid_config``,
            ``input_size``, ``downsample``, ``in_channels``,
            ``out_channels``, ...).

    Shapes (BEVDepth4D-R50, B=1, N=6): ``img_feats (1, 6, 512, 16, 44)`` ->
    ``bev_feat (1, 80, 128, 128)``, ``depth (1, 6, 118, 16, 44)``.
    ``state_dict``: ``depth_net.*`` only (names of :class:`DepthNet`).
    """

    def __init__(self,
                 loss_depth_weight: float = 3.0,
                 depthnet_cfg: Optional[dict] = None,
                 **kwargs):
        super().__init__(loss_depth_weight=loss_depth_weight, **kwargs)
        cfg = dict(depthnet_cfg or {})
        mid_channels = cfg.pop('mid_channels', self.in_channels)
        self.depth_net = DepthNet(self.in_channels, mid_channels,
                                  self.out_channels, self.D, **cfg)

    @staticmethod
    def get_mlp_input(sensor2keyegos: Tensor, intrins: Tensor,
                      post_rots: Tensor, post_trans: Tensor,
                      bda: Tensor) -> Tensor:
        """The camera vector of every image, ``(B, N, 27)``.

        In this order: ``fx, fy, cx, cy`` (intrinsics of the original
        image, pixels), ``post_rot[0,0], post_rot[0,1], post_tran[0],
        post_rot[1,0], post_rot[1,1], post_tran[1]`` (image augmentation),
        ``bda[0,0], bda[0,1], bda[1,0], bda[1,1], bda[2,2]`` (BEV
        augmentation) and ``sensor2keyego[:3, :]`` flattened row-major
        (rotation rows with the translation in metres as 4th column).

        Args:
            sensor2keyegos (Tensor): ``(B, N, 4, 4)``.
            intrins (Tensor): ``(B, N, 3, 3)``.
            post_rots (Tensor): ``(B, N, 3, 3)``.
            post_trans (Tensor): ``(B, N, 3)``.
            bda (Tensor): ``(B, 4, 4)`` or ``(B, 3, 3)``.
        """
        B, N = sensor2keyegos.shape[:2]
        if bda.dim() != 3 or bda.shape[0] != B or bda.shape[1] not in (3, 4):
            raise ValueError(f'bda must be (B={B}, 4, 4) or (B, 3, 3), got '
                             f'{tuple(bda.shape)}')
        bda = bda[:, None, :3, :3].expand(B, N, 3, 3)
        values = torch.stack([
            intrins[..., 0, 0], intrins[..., 1, 1], intrins[..., 0, 2],
            intrins[..., 1, 2],
            post_rots[..., 0, 0], post_rots[..., 0, 1], post_trans[..., 0],
            post_rots[..., 1, 0], post_rots[..., 1, 1], post_trans[..., 1],
            bda[..., 0, 0], bda[..., 0, 1], bda[..., 1, 0], bda[..., 1, 1],
            bda[..., 2, 2]
        ], dim=-1).float()
        extrinsics = sensor2keyegos[..., :3, :].reshape(B, N, 12).float()
        return torch.cat([values, extrinsics], dim=-1)

    def lift(self,
             img_feats: Tensor,
             sensor2keyegos: Tensor,
             intrins: Tensor,
             post_rots: Tensor,
             post_trans: Tensor,
             bda: Tensor,
             mlp_input: Optional[Tensor] = None,
             depth_logits: bool = False,
             **kwargs) -> Tuple[Tensor, Tensor]:
        """Depth distribution and context of every camera.

        Args:
            img_feats (Tensor): ``(B, N, C_in, h, w)``.
            sensor2keyegos, intrins, post_rots, post_trans, bda: the camera
                tensors of :meth:`forward`; they give ``mlp_input``.
            mlp_input (Tensor, optional): ``(B, N, 27)`` to use instead of
                :meth:`get_mlp_input` of the tensors above (BEVDepth4D feeds
                the key frame's extrinsics to every frame, as upstream).
            depth_logits (bool): Return the depth logits instead of their
                softmax.
            **kwargs: ignored (e.g. ``ego2globals``).

        Returns:
            tuple: ``depth (B, N, D, h, w)`` (softmax over ``D``, or the
            logits) and
            ``context (B, N, out_channels, h, w)``.
        """
        B, N, C, H, W = img_feats.shape
        if mlp_input is None:
            mlp_input = self.get_mlp_input(sensor2keyegos, intrins,
                                           post_rots, post_trans, bda)
        if tuple(mlp_input.shape) != (B, N, MLP_INPUT_DIM):
            raise ValueError(
                f'mlp_input must be (B={B}, N={N}, {MLP_INPUT_DIM}), got '
                f'{tuple(mlp_input.shape)}')
        x = self.depth_net(
            img_feats.reshape(B * N, C, H, W), mlp_input.reshape(B * N, -1))
        return self.split_depth_context(x, B, N, depth_logits)
