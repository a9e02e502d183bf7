"""BEVDepth4D detector (BEVDet dev3.0 ``BEVDepth4D``) for MMDetection3D 1.x."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import MODELS
from ..bevdet.bevdet import BEVDet, homogeneous_bda

#: per-camera tensors that follow the frame-major image order
FRAME_KEYS = ('sensor2keyegos', 'intrins', 'post_rots', 'post_trans',
              'ego2globals')


def ego_motion(key_sensor2keyego: Tensor, adj_sensor2keyego: Tensor) -> Tensor:
    """Adjacent key ego -> current key ego, ``(B, 4, 4)``.

    Both arguments are the key camera's ``sensor2keyego`` ``(B, 4, 4)``: of
    the current frame (camera -> current key ego, i.e. its ``sensor2ego``)
    and of the adjacent frame (adjacent camera -> current key ego). With a
    rigid camera rig (the same ``sensor2ego`` in both frames),
    ``adj_ego -> cur_ego = adj_s2ke @ inv(cur_s2ke)``. Computed in float64;
    returns the input dtype.
    """
    m = adj_sensor2keyego.double() @ torch.inverse(key_sensor2keyego.double())
    return m.to(adj_sensor2keyego.dtype)


@MODELS.register_module()
class BEVDepth4D(BEVDet):
    r"""BEVDepth4D: BEVDet with BEVDepth's DepthNet and temporal fusion.

    Per frame (the key frame and ``num_adj`` adjacent key frames), the
    shared image encoder and view transformer
    (:class:`LSSViewTransformerBEVDepth`) give a BEV map that
    ``pre_process_net`` (a one-stage :class:`CustomResNet`, stride 1) refines;
    the maps are concatenated along channels, key frame first
    (``(num_adj + 1) * C``: 160 channels for ``num_adj=1``, 720 for 8), and
    go through the BEV encoder and the head as in :class:`BEVDet`.

    **Input layout** (frame-major; ``T = num_adj + 1``, ``N = num_cams``):
    ``imgs (B, T*N, 3, H, W)``: the ``N`` images of the current key frame
    (cameras in config order), then the ``N`` images of adjacent frame 1
    (the previous key frame), frame 2, ...; every camera tensor
    (``sensor2keyegos``/``sensor2egos``/``ego2globals`` ``(B, T*N, 4, 4)``,
    ``intrins``/``post_rots`` ``(B, T*N, 3, 3)``, ``post_trans``
    ``(B, T*N, 3)``) follows the same order; ``bda (B, 4, 4)`` is shared.
    ``sensor2keyegos`` of every frame maps that frame's camera into the
    **current** key-ego frame (so adjacent ones contain the ego motion);
    without it, it is computed from ``sensor2egos`` and ``ego2globals``
    relative to the current frame's key camera (``key_cam``).
    ``gt_depth (B, N, H, W)`` (training, optional) is the current frame's.

    **Temporal alignment.**

    - ``align_after_view_transformation=False`` (default, upstream config):
      each adjacent frame is lifted with its own ``sensor2keyegos``, so its
      BEV map is already in the current BEV frame; no warp.
    - ``True``: adjacent frames are lifted into their *own* key-ego frame
      (``inv(ego motion) @ sensor2keyego``; exact for a rigid rig) and the
      BEV map is then warped into the current frame by
      :meth:`shift_feature` (bilinear ``grid_sample``).

    Adjacent frames always run under ``torch.no_grad()`` (only the key frame
    gets gradients). With ``with_prev=False`` the adjacent maps are zeros and
    their images are not processed (:class:`SequentialControlHook` turns it
    on after a few epochs). The DepthNet's camera vector uses the *key
    frame's* ``sensor2keyegos`` for every frame, as upstream does
    (``mlp_input_key_extrinsics=True``; ``False``: each frame's own lifting
    extrinsics). ``loss`` adds ``loss_depth`` (key frame) when the view
    transformer's ``loss_depth_weight > 0``; ``inputs['gt_depth']`` is then
    required.

    Args:
        pre_process (dict, optional): Config of ``pre_process_net``; None
            disables it.
        num_adj (int): Adjacent frames. 1 for ``bevdet-r50-4d-depth-cbgs``,
            8 for ``bevdet-r50-4dlongterm-depth-cbgs``.
        num_cams (int): Cameras per frame. Defaults to 6.
        align_after_view_transformation (bool): See above. Defaults to
            False. The upstream spelling ``align_after_view_transfromation``
            is accepted too.
        with_prev (bool): Use the adjacent frames. Defaults to True.
        mlp_input_key_extrinsics (bool): See above. Defaults to True.
        **kwargs: :class:`BEVDet` arguments.
    """

    def __init__(self,
                 pre_process: Optional[dict] = None,
                 num_adj: int = 1,
                 num_cams: int = 6,
                 align_after_view_transformation: bool = False,
                 with_prev: bool = True,
                 mlp_input_key_extrinsics: bool = True,
                 align_after_view_transfromation: Optional[bool] = None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_adj, int) or num_adj < 0:
            raise ValueError(f'num_adj must be an int >= 0, got {num_adj!r}')
        if not isinstance(num_cams, int) or num_cams < 1:
            raise ValueError(f'num_cams must be an int >= 1, got {num_cams!r}')
        if not 0 <= self.key_cam < num_cams:
            raise ValueError(f'key_cam={self.key_cam} must index one of the '
                             f'num_cams={num_cams} cameras')
        if align_after_view_transfromation is not None:
            align_after_view_transformation = align_after_view_transfromation
        self.pre_process_net = (
            MODELS.build(pre_process) if pre_process is not None else None)
        self.num_adj = num_adj
        self.num_frames = num_adj + 1
        self.num_cams = num_cams
        self.align_after_view_transformation = bool(
            align_after_view_transformation)
        self.with_prev = bool(with_prev)
        self.mlp_input_key_extrinsics = bool(mlp_input_key_extrinsics)

    # ---------------------------------------------------------------- inputs
    def split_frames(
            self, inputs: dict
    ) -> Tuple[List[Tensor], List[Dict[str, Tensor]], Tensor]:
        """Split the frame-major inputs into frames.

        Returns:
            tuple: ``imgs`` (list of ``T`` tensors ``(B, N, 3, H, W)``),
            ``cams`` (list of ``T`` dicts of the camera tensors of
            :meth:`camera_inputs` without ``bda``, each ``(B, N, ...)``;
            ``sensor2keyegos`` relative to the current key ego) and
            ``bda (B, 4, 4)``.

        Raises:
            ValueError: ``imgs`` is not ``(B, T*N, 3, H, W)`` with
                ``T = num_adj + 1``, or a camera tensor has another length.
        """
        imgs = inputs['imgs']
        N, T = self.num_cams, self.num_frames
        if imgs.dim() != 5 or imgs.shape[1] != T * N:
            raise ValueError(
                f"inputs['imgs'] has shape {tuple(imgs.shape)}; BEVDepth4D "
                f'with num_cams={N} and num_adj={self.num_adj} expects '
                f'(B, T*N={T * N}, 3, H, W) with T = num_adj + 1 = {T} '
                f'frames (frame-major), i.e. T = {imgs.shape[1] / N:g} here'
                if imgs.dim() == 5 else
                f"inputs['imgs'] must be (B, T*N, 3, H, W), got "
                f'{tuple(imgs.shape)}')
        cams = self.camera_inputs(inputs)
        bda = cams.pop('bda')
        for k, v in cams.items():
            if v.shape[1] != T * N:
                raise ValueError(
                    f'inputs[{k!r}] has shape {tuple(v.shape)}; expected '
                    f'{T * N} = T*N entries in dim 1 like imgs '
                    f'{tuple(imgs.shape)}')
        frames = [{k: v[:, t * N:(t + 1) * N]
                   for k, v in cams.items()} for t in range(T)]
        img_frames = [imgs[:, t * N:(t + 1) * N] for t in range(T)]
        return img_frames, frames, bda

    # -------------------------------------------------------------- features
    def prepare_bev_feat(self,
                         imgs: Tensor,
                         cams: Dict[str, Tensor],
                         bda: Tensor,
                         img_shape: Tuple[int, int],
                         mlp_sensor2keyegos: Optional[Tensor] = None
                         ) -> Tuple[Tensor, Tensor]:
        """One frame: image encoder, view transform, ``pre_process_net``.

        Args:
            imgs (Tensor): ``(B, N, 3, H, W)``.
            cams (dict): ``(B, N, ...)`` camera tensors of the frame
                (``sensor2keyegos`` = the extrinsics used for lifting).
            bda (Tensor): ``(B, 4, 4)``.
            img_shape (tuple): ``(H, W)`` of the network input.
            mlp_sensor2keyegos (Tensor, optional): ``(B, N, 4, 4)``
                extrinsics for the DepthNet's camera vector; None: those of
                ``cams``.

        Returns:
            tuple: ``bev (B, C, Y, X)`` and ``depth (B, N, D, h, w)``.
        """
        vt = self.img_view_transformer
        x = self.image_encoder(imgs)
        extra = {}
        if mlp_sensor2keyegos is not None and hasattr(vt, 'get_mlp_input'):
            extra['mlp_input'] = vt.get_mlp_input(
                mlp_sensor2keyegos, cams['intrins'], cams['post_rots'],
                cams['post_trans'], bda)
        bev, depth = vt(x, img_shape=img_shape, bda=bda, **cams, **extra)
        if self.pre_process_net is not None:
            bev = self.pre_process_net(bev)
            if isinstance(bev, (list, tuple)):
                bev = bev[0]
        return bev, depth

    def extract_bev_frames(self, inputs: dict) -> Tuple[List[Tensor], Tensor]:
        """Per-frame BEV maps, all in the current BEV frame.

        Returns:
            tuple: list of ``T`` maps ``(B, C, Y, X)`` (key frame first;
            zeros for adjacent frames if ``with_prev`` is False) and the key
            frame's ``depth (B, N, D, h, w)``.
        """
        img_frames, cam_frames, bda = self.split_frames(inputs)
        img_shape = tuple(inputs['imgs'].shape[-2:])
        key_s2ke = cam_frames[0]['sensor2keyegos']
        kc = self.key_cam
        bev_list: List[Tensor] = []
        depth_key = None
        for t, (imgs, cams) in enumerate(zip(img_frames, cam_frames)):
            if t > 0 and not self.with_prev:
                bev_list.append(torch.zeros_like(bev_list[0]))
                continue
            cams = dict(cams)
            motion = None
            if t > 0 and self.align_after_view_transformation:
                # lift into the adjacent frame's own key ego
                motion = ego_motion(key_s2ke[:, kc],
                                    cams['sensor2keyegos'][:, kc])
                cams['sensor2keyegos'] = (
                    torch.inverse(motion.double())[:, None]
                    @ cams['sensor2keyegos'].double()).to(key_s2ke.dtype)
            mlp_s2ke = key_s2ke if self.mlp_input_key_extrinsics else None
            if t == 0:
                bev, depth_key = self.prepare_bev_feat(
                    imgs, cams, bda, img_shape, mlp_s2ke)
            else:
                with torch.no_grad():
                    bev, _ = self.prepare_bev_feat(imgs, cams, bda,
                                                   img_shape, mlp_s2ke)
                if motion is not None:
                    bev = self.shift_feature(bev, motion, bda)
            bev_list.append(bev)
        return bev_list, depth_key

    def extract_img_feat(self, inputs: dict) -> Tuple[Tensor, Tensor]:
        """``bev_feat (B, C', Y, X)`` after the BEV encoder and the key
        frame's ``depth (B, N, D, h, w)``."""
        bev_list, depth = self.extract_bev_frames(inputs)
        return self.bev_encoder(torch.cat(bev_list, dim=1)), depth

    # ------------------------------------------------------------- alignment
    def shift_feature(self, feat: Tensor, adj2cur: Tensor,
                      bda: Optional[Tensor] = None) -> Tensor:
        """Warp an adjacent frame's BEV map into the current BEV frame.

        The adjacent map lives in the BEV frame ``bda @ adjacent key ego``.
        For the centre ``p`` of each current cell (BEV frame
        ``bda @ current key ego``), the map is sampled bilinearly (zeros
        outside) at ``bda @ inv(adj2cur) @ inv(bda) @ p``. Only the x/y rows
        and columns of the transforms are used (yaw-only motion, as
        upstream); unlike upstream, cell *centres* (not lower edges) define
        the metric positions, which makes rotations exact.

        Args:
            feat (Tensor): ``(B, C, Y, X)`` on the view transformer's grid.
            adj2cur (Tensor): ``(B, 4, 4)`` adjacent key ego -> current key
                ego (:func:`ego_motion`), metres.
            bda (Tensor, optional): ``(B, 4, 4)`` or ``(B, 3, 3)`` BEV
                augmentation; None = identity.

        Returns:
            Tensor: ``(B, C, Y, X)``.
        """
        vt = self.img_view_transformer
        B, _, Y, X = feat.shape
        if [X, Y] != list(vt.grid_size[:2]):
            raise ValueError(
                f'feat {tuple(feat.shape)} does not match the BEV grid '
                f'(X, Y) = {tuple(vt.grid_size[:2])}')
        dev = feat.device
        b4 = (homogeneous_bda(bda.to(dev)) if bda is not None else
              torch.eye(4, dtype=torch.float64, device=dev).repeat(B, 1, 1))
        cur2adj = b4 @ torch.inverse(adj2cur.to(dev, torch.float64)) \
            @ torch.inverse(b4)
        keep = [0, 1, 3]
        cur2adj = cur2adj[:, keep][:, :, keep]  # (B, 3, 3) homogeneous 2D
        lower = vt.grid_lower_bound.double()
        step = vt.grid_interval.double()
        idx2m = torch.eye(3, dtype=torch.float64, device=dev)
        idx2m[0, 0], idx2m[1, 1] = step[0], step[1]
        idx2m[0, 2] = lower[0] + 0.5 * step[0]
        idx2m[1, 2] = lower[1] + 0.5 * step[1]
        tf = torch.inverse(idx2m) @ cur2adj @ idx2m  # cur index -> adj index
        ys, xs = torch.meshgrid(
            torch.arange(Y, dtype=torch.float64, device=dev),
            torch.arange(X, dtype=torch.float64, device=dev),
            indexing='ij')
        pts = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)  # (Y, X, 3)
        src = torch.einsum('bij,yxj->byxi', tf, pts)[..., :2]
        norm = torch.tensor([max(X - 1, 1), max(Y - 1, 1)],
                            dtype=torch.float64, device=dev)
        grid = (src / norm * 2.0 - 1.0).to(feat.dtype)
        return F.grid_sample(
            feat, grid, mode='bilinear', padding_mode='zeros',
            align_corners=True)
