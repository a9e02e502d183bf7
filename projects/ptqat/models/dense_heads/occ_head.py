"""Occupancy heads on a BEV feature: FlashOcc's channel-to-height ``BEVOCCHead2D`` and a 3D
voxel head (``BEVOCCHead3D``, BEVDet-occ / BEVFormer-occ style), with the camera-masked
cross-entropy of BEVDet-occ / FlashOcc."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ptqat.bev_geometry import OCC3D_BOUNDS
from .grid_transform import BEVGridTransform

#: FlashOcc's Occ3D-nuScenes class frequencies (for ``class_balance=True``)
NUSC_CLASS_FREQUENCIES = (944004, 1897170, 152386, 2391677, 16957802, 724139, 189027, 2074468,
                          413451, 2384460, 5916653, 175883646, 4275424, 51393615, 61411620,
                          105975596, 116424404, 1892500630)


class _OccHeadBase(nn.Module):
    """Loss and prediction shared by the occupancy heads (logits ``(B, X, Y, Z, n_cls)``)."""

    def _init_loss(self, num_classes: int, loss_occ: Optional[dict], use_mask: bool,
                   class_balance: bool) -> None:
        self.num_classes = num_classes
        self.use_mask = use_mask
        self.class_balance = class_balance
        cfg = dict(loss_occ or dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False,
                                    ignore_index=255, loss_weight=1.0))
        if class_balance:
            if num_classes != len(NUSC_CLASS_FREQUENCIES):
                raise ValueError(f'class_balance needs the 18 Occ3D classes, got {num_classes}')
            w = 1 / np.log(np.asarray(NUSC_CLASS_FREQUENCIES, dtype=np.float64) + 0.001)
            cfg['class_weight'] = w.tolist()
        self.loss_occ = MODELS.build(cfg)

    def loss(self, logits: Tensor, voxel_semantics: Tensor,
             mask_camera: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Cross-entropy per voxel, weighted by ``mask_camera`` (0/1), averaged over the mask.

        Args:
            logits: ``(B, X, Y, Z, n_cls)``.
            voxel_semantics: ``(B, X, Y, Z)`` labels (BEV frame, from ``LoadOccGTFromFile``).
            mask_camera: ``(B, X, Y, Z)`` bool; required when ``use_mask``.
        """
        if logits.shape[:-1] != voxel_semantics.shape:
            raise ValueError(f'occupancy logits {tuple(logits.shape)} do not match the labels '
                             f'{tuple(voxel_semantics.shape)}')
        target = voxel_semantics.reshape(-1).long()
        pred = logits.reshape(-1, self.num_classes)
        if not self.use_mask:
            return dict(loss_occ=self.loss_occ(pred, target))
        if mask_camera is None:
            raise KeyError('use_mask=True needs mask_camera (LoadOccGTFromFile + PackBEVDetInputs '
                           'keys)')
        mask = mask_camera.reshape(-1).to(pred.dtype)
        if self.class_balance:
            w = pred.new_tensor(self.loss_occ.class_weight)[target] * mask
            avg = w.sum()
        else:
            avg = mask.sum()
        return dict(loss_occ=self.loss_occ(pred, target, mask, avg_factor=avg.clamp(min=1.0)))

    @staticmethod
    def predict(logits: Tensor) -> List[Tensor]:
        """Per sample, the uint8 label volume ``(X, Y, Z)`` (argmax of the softmax)."""
        return list(logits.softmax(-1).argmax(-1).to(torch.uint8))


@MODELS.register_module()
class BEVOCCHead2D(_OccHeadBase):
    """FlashOcc's channel-to-height head: 2D conv, then an MLP to ``Dz * n_cls`` per BEV cell.

    ``(B, C, Y, X)`` -> [optional :class:`BEVGridTransform` to the Occ3D grid] ->
    ``ConvModule(3x3, in_dim -> out_dim, ReLU)`` -> permute to ``(B, X, Y, out_dim)`` ->
    ``Linear(out_dim, 2 out_dim) - Softplus - Linear(2 out_dim, Dz n_cls)`` -> logits
    ``(B, X, Y, Dz, n_cls)`` (``use_predicter=False``: the conv outputs ``Dz n_cls``).

    Args:
        in_dim, out_dim (int): channels (FlashOcc M1: 256, 256).
        Dz (int): height bins (16).
        num_classes (int): 18.
        use_predicter (bool): the MLP (True upstream).
        input_bounds (sequence, optional): ``(xbound, ybound)`` of the BEV feature when it is
            not already the occupancy grid; it is then resampled to ``output_bounds``.
        output_bounds (sequence): the Occ3D ``(xbound, ybound)`` (±40 m, 0.4 m).
        loss_occ (dict, optional): loss config (default ``mmdet.CrossEntropyLoss``,
            ``ignore_index=255``).
        use_mask (bool): weight the CE by ``mask_camera`` (FlashOcc / BEVDet-occ: True).
        class_balance (bool): FlashOcc's ``1 / log(freq)`` class weights.
    """

    def __init__(self, in_dim: int = 256, out_dim: int = 256, Dz: int = 16,
                 num_classes: int = 18, use_predicter: bool = True,
                 input_bounds: Optional[Sequence] = None,
                 output_bounds: Sequence = OCC3D_BOUNDS[:2], loss_occ: Optional[dict] = None,
                 use_mask: bool = True, class_balance: bool = False):
        super().__init__()
        self.Dz = Dz
        self.use_predicter = use_predicter
        self.grid_transform = (BEVGridTransform(input_bounds, output_bounds)
                               if input_bounds is not None else None)
        conv_out = out_dim if use_predicter else Dz * num_classes
        self.final_conv = ConvModule(in_dim, conv_out, kernel_size=3, stride=1, padding=1,
                                     bias=True, conv_cfg=dict(type='Conv2d'))
        if use_predicter:
            self.predicter = nn.Sequential(nn.Linear(out_dim, out_dim * 2), nn.Softplus(),
                                           nn.Linear(out_dim * 2, Dz * num_classes))
        self._init_loss(num_classes, loss_occ, use_mask, class_balance)

    def forward(self, bev: Tensor) -> Tensor:
        """``(B, C, Y, X)`` -> logits ``(B, X, Y, Dz, n_cls)``."""
        if self.grid_transform is not None:
            bev = self.grid_transform(bev)
        x = self.final_conv(bev).permute(0, 3, 2, 1)  # (B, X, Y, C)
        if self.use_predicter:
            x = self.predicter(x)
        return x.reshape(*x.shape[:3], self.Dz, self.num_classes)


@MODELS.register_module()
class BEVOCCHead3D(_OccHeadBase):
    """3D voxel head: ``Conv3d(3x3x3) + ReLU``, then a per-voxel MLP to ``n_cls``.

    Input: a voxel feature ``(B, C, Dz, Y, X)`` (BEVDet-occ's ``collapse_z=False`` pipeline),
    or a BEV feature ``(B, C * Dz, Y, X)`` whose channels are split into ``(C, Dz)`` as the
    BEVFormer-occ ``use_3d`` head does. Output logits ``(B, X, Y, Dz, n_cls)``.
    Under PTQAT ``final_conv`` (an ``nn.Conv3d``) becomes a ``ptqat.quant.QuantConv3d``.

    Args:
        in_dim (int): voxel channels ``C``; out_dim (int): conv output (32 in dev3.0).
        Dz, num_classes, use_predicter, input_bounds, output_bounds, loss_occ, use_mask,
        class_balance: as :class:`BEVOCCHead2D`.
    """

    def __init__(self, in_dim: int = 32, out_dim: int = 32, Dz: int = 16,
                 num_classes: int = 18, use_predicter: bool = True,
                 input_bounds: Optional[Sequence] = None,
                 output_bounds: Sequence = OCC3D_BOUNDS[:2], loss_occ: Optional[dict] = None,
                 use_mask: bool = True, class_balance: bool = False):
        super().__init__()
        self.in_dim, self.Dz = in_dim, Dz
        self.use_predicter = use_predicter
        self.grid_transform = (BEVGridTransform(input_bounds, output_bounds)
                               if input_bounds is not None else None)
        conv_out = out_dim if use_predicter else num_classes
        self.final_conv = ConvModule(in_dim, conv_out, kernel_size=3, stride=1, padding=1,
                                     bias=True, conv_cfg=dict(type='Conv3d'))
        if use_predicter:
            self.predicter = nn.Sequential(nn.Linear(out_dim, out_dim * 2), nn.Softplus(),
                                           nn.Linear(out_dim * 2, num_classes))
        self._init_loss(num_classes, loss_occ, use_mask, class_balance)

    def forward(self, feat: Tensor) -> Tensor:
        """``(B, C, Dz, Y, X)`` or ``(B, C * Dz, Y, X)`` -> logits ``(B, X, Y, Dz, n_cls)``."""
        if feat.dim() == 4:
            if feat.shape[1] != self.in_dim * self.Dz:
                raise ValueError(f'BEV feature with {feat.shape[1]} channels cannot be split into '
                                 f'in_dim {self.in_dim} x Dz {self.Dz}')
            if self.grid_transform is not None:
                feat = self.grid_transform(feat)
            feat = feat.reshape(feat.shape[0], self.in_dim, self.Dz, *feat.shape[-2:])
        elif self.grid_transform is not None:
            B, C, Z, Y, X = feat.shape
            feat = self.grid_transform(feat.reshape(B, C * Z, Y, X)).reshape(
                B, C, Z, *self.grid_transform.output_shape)
        x = self.final_conv(feat).permute(0, 4, 3, 2, 1)  # (B, X, Y, Z, C)
        if self.use_predicter:
            x = self.predicter(x)
        return x
