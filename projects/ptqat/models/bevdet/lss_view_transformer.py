"""LSS view transformer of BEVDet (lift, splat; pure PyTorch)."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .bev_pool import bev_pool, voxel_pooling_prepare


def depth_bce_from_logits(logits: Tensor, target: Tensor) -> Tensor:
    """``F.binary_cross_entropy(logits.softmax(1), target).sum()`` without
    its float32 failure: every term comes from log-probabilities.

    ``log p_j = z_j - lse(z)`` and ``log(1 - p_j) = lse_{k != j}(z) - lse(z)``,
    the exclusive log-sum-exp taken from a prefix and a suffix
    ``logcumsumexp``, so no ``1 - p`` is ever formed. The gradient with
    respect to ``z`` is bounded (each of a row's ``D`` terms adds an L1 norm
    of at most 2), where the probability form's backward divides by
    ``max(p (1 - p), 1e-12)`` and is no longer cancelled by the softmax
    Jacobian once a bin rounds to ``p = 1``.
    Unlike ``F.binary_cross_entropy`` the logs are not clamped at -100.

    Args:
        logits (Tensor): ``(M, D)`` depth logits of M pixels, ``D >= 2``.
        target (Tensor): ``(M, D)`` targets in [0, 1] (one-hot rows).

    Returns:
        Tensor: scalar, the sum over pixels and bins.
    """
    if logits.dim() != 2 or logits.shape != target.shape or logits.shape[1] < 2:
        raise ValueError('logits and target must both be (M, D) with D >= 2, '
                         f'got {tuple(logits.shape)} and {tuple(target.shape)}')
    total = torch.logsumexp(logits, dim=1, keepdim=True)
    pad = torch.full_like(logits[:, :1], float('-inf'))
    before = torch.cat([pad, logits.logcumsumexp(dim=1)[:, :-1]], dim=1)
    after = torch.cat(
        [logits.flip(1).logcumsumexp(dim=1).flip(1)[:, 1:], pad], dim=1)
    log_p = logits - total
    log_not_p = torch.logaddexp(before, after) - total
    return -(target * log_p + (1 - target) * log_not_p).sum()


@MODELS.register_module()
class LSSViewTransformer(BaseModule):
    r"""Lift-Splat view transformer (BEVDet, ``bev_pool_v2`` semantics).

    Pipeline (``forward``):

    1. :meth:`lift` - ``depth_net`` (a single 1x1 ``Conv2d(in_channels,
       D + out_channels)``) on every camera feature; softmax over the first
       ``D`` channels gives the depth distribution, the next
       ``out_channels`` channels are the context feature.
    2. :meth:`get_geometry` - the BEV-frame position of every frustum point
       ``(u, v, d)``: undo the image augmentation (``post_rots``,
       ``post_trans``), un-project with the inverse intrinsics, move with
       ``sensor2keyego`` and finally apply the BEV augmentation ``bda``.
    3. :meth:`splat` - :func:`voxel_pooling_prepare` + :func:`bev_pool` sum
       ``depth * context`` into the ``(X, Y, Z)`` grid; ``Z`` is folded into
       the channels (``collapse_z``).

    The frustum depends only on the image and feature sizes; it is built on
    demand and cached per ``(input size, feature size, device, dtype)``, so
    different image sizes work and nothing is stored in the ``state_dict``
    (whose only entries are ``depth_net.{weight,bias}``).

    Args:
        grid_config (dict): ``x``, ``y``, ``z``: ``[lower, upper, interval]``
            in metres of the BEV grid; ``depth``: ``[min, max, step]`` of
            the depth bins (``D = len(arange(min, max, step))``).
        input_size (tuple[int, int], optional): Network input ``(H, W)``;
            used when ``forward`` gets no ``img_shape``. If None, it is the
            feature size times ``downsample``.
        downsample (int): Stride of the image features. Defaults to 16.
        in_channels (int): Channels of the image features.
        out_channels (int): Channels of the context / BEV feature.
        collapse_z (bool): Fold the Z bins into channels. Defaults to True.
        loss_depth_weight (float): Weight of the LiDAR depth supervision
            (:meth:`get_depth_loss`, BEVDepth). 0 (the default, plain BEVDet)
            turns it off; BEVDepth uses 3.0.
        depth_loss (str): How :meth:`get_depth_loss` computes BEVDepth's
            per-bin binary cross-entropy. ``'bce'`` (the default, as
            upstream): on the softmax probabilities; where a wrong bin
            saturates to ``p = 1`` in float32 its gradient is wrong by orders
            of magnitude (measured on a trained BEVDepth4D-tiny: loss
            gradient norms of 1e4-5e4 where ~2 is right). ``'bce_logits'``:
            the same loss computed from the depth logits (log-softmax and an
            exclusive log-sum-exp), whose gradient is bounded; ``forward``
            then returns the depth logits instead of the probabilities (the
            splat still uses the probabilities). The model and its
            ``state_dict`` are the same either way.
        accelerate, sid: upstream options; only their default (False) is
            supported.

    Shapes (BEVDet-R50, B=1, N=6): ``img_feats (1, 6, 256, 16, 44)`` ->
    ``bev_feat (1, 64, 128, 128)``, ``depth (1, 6, 59, 16, 44)``.
    Frame convention: x forward / y left / z up as given by the
    ``sensor2keyego`` and ``bda`` matrices; BEV cell ``(iy, ix)`` of the
    output covers ``x in [x0 + ix*dx, x0 + (ix+1)*dx)`` and likewise in y
    (rows are y, columns are x).
    """

    DEPTH_LOSSES = ('bce', 'bce_logits')

    def __init__(self,
                 grid_config: Dict[str, Sequence[float]],
                 input_size: Optional[Sequence[int]] = None,
                 downsample: int = 16,
                 in_channels: int = 512,
                 out_channels: int = 64,
                 collapse_z: bool = True,
                 loss_depth_weight: float = 0.0,
                 depth_loss: str = 'bce',
                 init_cfg: Optional[dict] = None,
                 **kwargs):
        super().__init__(init_cfg=init_cfg)
        if kwargs.pop('accelerate', False):
            raise NotImplementedError(
                'accelerate=True (precomputed ranks) is not supported; the '
                'pure-PyTorch pooling recomputes the ranks every call')
        if kwargs.pop('sid', False):
            raise NotImplementedError('sid (spacing-increasing depth bins)')
        if kwargs:
            raise TypeError(f'unexpected arguments {sorted(kwargs)}')
        self.grid_config = grid_config
        self.input_size = tuple(input_size) if input_size else None
        self.downsample = downsample
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.collapse_z = collapse_z
        if not loss_depth_weight >= 0:
            raise ValueError(
                f'loss_depth_weight must be >= 0, got {loss_depth_weight}')
        self.loss_depth_weight = float(loss_depth_weight)
        if depth_loss not in self.DEPTH_LOSSES:
            raise ValueError(f'depth_loss must be one of {self.DEPTH_LOSSES}, '
                             f'got {depth_loss!r}')
        self.depth_loss = depth_loss
        self._create_grid_infos(grid_config)
        self.depth_bins = torch.arange(
            *grid_config['depth'], dtype=torch.float)
        self.D = int(self.depth_bins.numel())
        self._frustum_cache: Dict[tuple, Tensor] = {}
        self.depth_net = nn.Conv2d(
            in_channels, self.D + out_channels, kernel_size=1, padding=0)

    # ------------------------------------------------------------------ grid
    def _create_grid_infos(self, grid_config: dict) -> None:
        axes = [grid_config['x'], grid_config['y'], grid_config['z']]
        # plain tensors (not buffers): the official state_dict has none
        self.grid_lower_bound = torch.tensor([float(a[0]) for a in axes])
        self.grid_interval = torch.tensor([float(a[2]) for a in axes])
        self.grid_size = [
            int(round((float(a[1]) - float(a[0])) / float(a[2])))
            for a in axes
        ]  # (X, Y, Z)

    def create_frustum(self, input_size: Sequence[int],
                       feat_size: Sequence[int],
                       device=None,
                       dtype=torch.float32) -> Tensor:
        """Frustum points ``(D, H_feat, W_feat, 3)`` holding ``(u, v, d)``.

        ``u = linspace(0, W_in - 1, W_feat)`` and
        ``v = linspace(0, H_in - 1, H_feat)`` are pixel coordinates in the
        (augmented) network input image, ``d`` the depth bin values.
        """
        key = (tuple(int(s) for s in input_size),
               tuple(int(s) for s in feat_size), str(device), dtype)
        frustum = self._frustum_cache.get(key)
        if frustum is None:
            (h_in, w_in), (h_f, w_f) = key[0], key[1]
            d = self.depth_bins.to(device=device, dtype=dtype).view(
                -1, 1, 1).expand(-1, h_f, w_f)
            num_d = d.shape[0]
            u = torch.linspace(
                0, w_in - 1, w_f, dtype=dtype, device=device).view(
                    1, 1, w_f).expand(num_d, h_f, w_f)
            v = torch.linspace(
                0, h_in - 1, h_f, dtype=dtype, device=device).view(
                    1, h_f, 1).expand(num_d, h_f, w_f)
            frustum = torch.stack((u, v, d), dim=-1)
            self._frustum_cache[key] = frustum
        return frustum

    # -------------------------------------------------------------- geometry
    def get_geometry(self,
                     sensor2keyegos: Tensor,
                     intrins: Tensor,
                     post_rots: Tensor,
                     post_trans: Tensor,
                     bda: Tensor,
                     frustum: Tensor) -> Tensor:
        """BEV-frame coordinates of every frustum point.

        Args:
            sensor2keyegos (Tensor): ``(B, N, 4, 4)`` camera -> key ego.
            intrins (Tensor): ``(B, N, 3, 3)`` camera intrinsics (original
                image).
            post_rots (Tensor): ``(B, N, 3, 3)`` image augmentation
                (resize/crop/flip/rotate) as a 3x3 acting on ``(u, v, 1)``
                style vectors; the last row/column are ``[0, 0, 1]``.
            post_trans (Tensor): ``(B, N, 3)`` image augmentation translation.
            bda (Tensor): ``(B, 4, 4)`` (or ``(B, 3, 3)``) BEV augmentation.
            frustum (Tensor): ``(D, H, W, 3)`` from :meth:`create_frustum`.

        Returns:
            Tensor: ``(B, N, D, H, W, 3)`` points ``(x, y, z)`` in the BEV
            frame ``bda @ key ego``:
            ``p = bda @ (R_s2e @ K^-1 @ [u' d, v' d, d] + t_s2e)`` with
            ``(u', v', d) = post_rot^-1 @ ((u, v, d) - post_tran)``.
        """
        B, N = sensor2keyegos.shape[:2]
        dtype = frustum.dtype
        s2e = sensor2keyegos.to(dtype)
        pts = frustum.unsqueeze(0).unsqueeze(0) - post_trans.to(dtype).view(
            B, N, 1, 1, 1, 3)
        pts = torch.inverse(post_rots.to(dtype)).view(
            B, N, 1, 1, 1, 3, 3).matmul(pts.unsqueeze(-1))
        # (u*d, v*d, d): homogeneous pixel times depth
        pts = torch.cat((pts[..., :2, :] * pts[..., 2:3, :], pts[..., 2:3, :]),
                        dim=-2)
        combine = s2e[..., :3, :3].matmul(torch.inverse(intrins.to(dtype)))
        pts = combine.view(B, N, 1, 1, 1, 3, 3).matmul(pts).squeeze(-1)
        pts = pts + s2e[..., :3, 3].view(B, N, 1, 1, 1, 3)
        bda = bda.to(dtype)
        pts = bda[:, :3, :3].view(B, 1, 1, 1, 1, 3, 3).matmul(
            pts.unsqueeze(-1)).squeeze(-1)
        if bda.shape[-1] == 4:
            pts = pts + bda[:, :3, 3].view(B, 1, 1, 1, 1, 3)
        return pts

    # ------------------------------------------------------------ lift/splat
    def lift(self, img_feats: Tensor, depth_logits: bool = False,
             **kwargs) -> Tuple[Tensor, Tensor]:
        """Depth distribution and context feature per camera.

        Args:
            img_feats (Tensor): ``(B, N, C_in, H, W)``.
            depth_logits (bool): Return the depth logits instead of their
                softmax.
            **kwargs: camera parameters (unused here; for subclasses such
                as BEVDepth's camera-aware depth net).

        Returns:
            tuple: ``depth (B, N, D, H, W)`` (softmax over D, or the logits)
            and ``context (B, N, out_channels, H, W)``.
        """
        B, N, C, H, W = img_feats.shape
        x = self.depth_net(img_feats.reshape(B * N, C, H, W))
        return self.split_depth_context(x, B, N, depth_logits)

    def split_depth_context(self, x: Tensor, B: int, N: int,
                            depth_logits: bool = False
                            ) -> Tuple[Tensor, Tensor]:
        """``(B*N, D + out_channels, h, w)`` depth-net output -> ``depth
        (B, N, D, h, w)`` (softmax over D; the raw logits if
        ``depth_logits``) and ``context (B, N, C, h, w)``."""
        H, W = x.shape[-2:]
        depth = x[:, :self.D]
        if not depth_logits:
            depth = depth.softmax(dim=1)
        context = x[:, self.D:self.D + self.out_channels]
        return (depth.reshape(B, N, self.D, H, W),
                context.reshape(B, N, self.out_channels, H, W))

    # ------------------------------------------------------ depth supervision
    def get_downsampled_gt_depth(self, gt_depth: Tensor) -> Tensor:
        """One-hot depth-bin targets at the feature resolution (BEVDepth).

        Each ``downsample x downsample`` block takes its nearest non-zero
        LiDAR depth; depths outside ``[min, max)`` of ``grid_config['depth']``
        and blocks without any point get an all-zero row (ignored).

        Args:
            gt_depth (Tensor): ``(B, N, H, W)`` metres, 0 = no LiDAR point;
                ``H`` and ``W`` multiples of ``downsample``.

        Returns:
            Tensor: ``(B * N * H/ds * W/ds, D)`` float one-hot rows in the
            order of ``depth.permute(0, 1, 3, 4, 2)`` of a ``(B, N, D, h, w)``
            prediction.
        """
        B, N, H, W = gt_depth.shape
        ds = self.downsample
        if H % ds or W % ds:
            raise ValueError(f'gt_depth size {(H, W)} is not a multiple of '
                             f'the feature stride {ds}')
        blocks = gt_depth.reshape(B * N, H // ds, ds, W // ds, ds)
        blocks = blocks.permute(0, 1, 3, 2, 4).reshape(-1, ds * ds)
        nearest = torch.where(blocks > 0, blocks,
                              torch.full_like(blocks, 1e5)).min(dim=1).values
        d_min, _, d_step = (float(v) for v in self.grid_config['depth'])
        index = torch.floor((nearest - d_min) / d_step)
        valid = (index >= 0) & (index < self.D)
        index = torch.where(valid, index + 1, torch.zeros_like(index)).long()
        return F.one_hot(index, num_classes=self.D + 1)[:, 1:].float()

    def get_depth_loss(self, gt_depth: Tensor, depth: Tensor) -> Tensor:
        """BEVDepth's depth loss: BCE of the depth distribution against the
        one-hot LiDAR bin, summed over the bins, averaged over the feature
        pixels that have a point, times ``loss_depth_weight``.

        Args:
            gt_depth (Tensor): ``(B, N, H_in, W_in)`` metres, 0 = no point.
            depth (Tensor): ``(B, N, D, h, w)`` as returned by
                :meth:`forward`: the softmax over ``D`` (``depth_loss='bce'``)
                or the logits (``'bce_logits'``, see
                :func:`depth_bce_from_logits`); ``h = H_in / downsample``.

        Returns:
            Tensor: scalar loss (0 with a gradient path if no pixel has a
            point).
        """
        target = self.get_downsampled_gt_depth(gt_depth)
        pred = depth.permute(0, 1, 3, 4, 2).reshape(-1, self.D)
        if pred.shape[0] != target.shape[0]:
            raise ValueError(
                f'depth prediction {tuple(depth.shape)} does not match '
                f'gt_depth {tuple(gt_depth.shape)} at stride {self.downsample}')
        fg = target.max(dim=1).values > 0
        with torch.autocast(device_type=depth.device.type, enabled=False):
            if self.depth_loss == 'bce_logits':
                loss = depth_bce_from_logits(pred[fg].float(), target[fg])
            else:
                loss = F.binary_cross_entropy(
                    pred[fg].float(), target[fg], reduction='none').sum()
        return self.loss_depth_weight * loss / max(1.0, float(fg.sum()))

    def splat(self, coor: Tensor, depth: Tensor, context: Tensor) -> Tensor:
        """Pool ``depth x context`` of every frustum point into the grid.

        Args:
            coor (Tensor): ``(B, N, D, H, W, 3)`` from :meth:`get_geometry`.
            depth (Tensor): ``(B, N, D, H, W)``.
            context (Tensor): ``(B, N, C, H, W)``.

        Returns:
            Tensor: ``(B, C*Z, Y, X)`` if ``collapse_z`` else
            ``(B, C, Z, Y, X)``.
        """
        B, N, C = context.shape[:3]
        gx, gy, gz = self.grid_size
        with torch.no_grad():
            ranks_bev, ranks_depth, ranks_feat = voxel_pooling_prepare(
                coor.detach(), self.grid_lower_bound, self.grid_interval,
                self.grid_size)
        bev = bev_pool(depth, context.permute(0, 1, 3, 4, 2), ranks_depth,
                       ranks_feat, ranks_bev, (B, gz, gy, gx, C))
        if self.collapse_z:
            bev = torch.cat(bev.unbind(dim=2), dim=1)
        return bev

    def forward(self,
                img_feats: Tensor,
                sensor2keyegos: Tensor,
                intrins: Tensor,
                post_rots: Tensor,
                post_trans: Tensor,
                bda: Tensor,
                img_shape: Optional[Sequence[int]] = None,
                **kwargs) -> Tuple[Tensor, Tensor]:
        """Lift the camera features and splat them into the BEV grid.

        Args:
            img_feats (Tensor): ``(B, N, C_in, H_feat, W_feat)``.
            sensor2keyegos, intrins, post_rots, post_trans, bda: see
                :meth:`get_geometry`.
            img_shape (tuple[int, int], optional): ``(H_in, W_in)`` of the
                network input images; defaults to ``input_size`` or
                ``feature size * downsample``.
            **kwargs: further camera tensors (e.g. ``ego2globals``), passed
                to :meth:`lift`.

        Returns:
            tuple: ``bev_feat (B, out_channels*Z, Y, X)`` and
            ``depth (B, N, D, H_feat, W_feat)``: the softmax over ``D``, or
            the logits if ``depth_loss='bce_logits'`` (what
            :meth:`get_depth_loss` takes).
        """
        feat_size = img_feats.shape[-2:]
        if img_shape is None:
            img_shape = self.input_size or tuple(
                int(s) * self.downsample for s in feat_size)
        from_logits = self.depth_loss == 'bce_logits'
        depth, context = self.lift(
            img_feats,
            depth_logits=from_logits,
            sensor2keyegos=sensor2keyegos,
            intrins=intrins,
            post_rots=post_rots,
            post_trans=post_trans,
            bda=bda,
            **kwargs)
        frustum = self.create_frustum(
            img_shape, feat_size, device=img_feats.device,
            dtype=torch.float32)
        coor = self.get_geometry(sensor2keyegos, intrins, post_rots,
                                 post_trans, bda, frustum)
        probs = depth.softmax(dim=2) if from_logits else depth
        bev_feat = self.splat(coor, probs, context)
        return bev_feat, depth
