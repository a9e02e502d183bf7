"""BEVFormer with the dense BEV tasks: ``BEVFormerOCC`` (Occ3D occupancy) and ``BEVFormerSeg``
(BEV map segmentation), on the heads of :mod:`ptqat.models.dense_heads`.

BEVFormer's BEV (``bev_embed (B, H*W, C)``, rows = LiDAR y, columns = LiDAR x over
``pc_range``) lives in the LiDAR frame; the dense ground truth (``LoadOccGTFromFile``,
``LoadBEVSegmentation``) and the heads use the key-ego frame ``[y, x]`` of the BEVDet models.
:func:`lidar_bev_to_keyego` resamples the BEV into that frame (same bounds and cell count,
bilinear, zeros outside) with the per-sample ``lidar2keyego`` (``LidarToKeyEgo``); the heads
then resample it onto their own grids (Occ3D 200x200 at 0.4 m, map 200x200 at 0.5 m).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import MODELS
from ..dense_heads.dense_detectors import _required
from .bevformer import BEVFormer, SampleList


def lidar_bev_to_keyego(bev: Tensor, lidar2keyego: Tensor, pc_range: Sequence[float]) -> Tensor:
    """Resample a LiDAR-frame BEV onto the key-ego grid with the same bounds and shape.

    Args:
        bev: ``(B, C, H, W)``, row ``i`` at LiDAR ``y = y_min + (i + 0.5) dy``, column ``j`` at
            ``x = x_min + (j + 0.5) dx`` (``pc_range = [x_min, y_min, z_min, x_max, y_max,
            z_max]``).
        lidar2keyego: ``(B, 4, 4)`` LiDAR -> key ego; only its rotation about z and its
            ``(x, y)`` translation are used (the BEV is a top view).
        pc_range: the BEV bounds (metres), used for both grids.

    Returns:
        ``(B, C, H, W)`` in the key-ego frame, same layout; cells whose centre falls outside
        the LiDAR-frame grid are zero.
    """
    B, _, H, W = bev.shape
    x0, y0, x1, y1 = pc_range[0], pc_range[1], pc_range[3], pc_range[4]
    dev = bev.device
    xs = x0 + (torch.arange(W, device=dev, dtype=torch.float64) + 0.5) * (x1 - x0) / W
    ys = y0 + (torch.arange(H, device=dev, dtype=torch.float64) + 0.5) * (y1 - y0) / H
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    pts = torch.stack([gx, gy], -1).reshape(-1, 2)  # (HW, 2) key-ego (x, y)
    m = lidar2keyego.to(device=dev, dtype=torch.float64)
    yaw = torch.atan2(m[:, 1, 0], m[:, 0, 0])
    c, s = torch.cos(yaw), torch.sin(yaw)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2)
    # p_lidar = R^T (p_ego - t)
    local = torch.einsum('bji,bnj->bni', rot, pts[None] - m[:, None, :2, 3])
    u = (local[..., 0] - x0) / (x1 - x0) * 2 - 1
    v = (local[..., 1] - y0) / (y1 - y0) * 2 - 1
    grid = torch.stack([u, v], -1).view(B, H, W, 2).to(bev.dtype)
    return F.grid_sample(bev, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


@MODELS.register_module()
class BEVFormerOCC(BEVFormer):
    """BEVFormer with an occupancy head and / or a map segmentation head, on its BEV feature
    moved into the key-ego frame (:func:`lidar_bev_to_keyego`).

    ``pts_bbox_head`` (``BEVFormerHead``) holds the BEV encoder; with ``transformer.decoder=None``
    it only encodes the BEV (no object queries, as upstream's BEVFormer-occ), with a decoder the
    detection losses / boxes come too (boxes in the LiDAR frame, as :class:`BEVFormer`).

    Inputs besides :class:`BEVFormer`'s: metainfo ``lidar2keyego`` (``LidarToKeyEgo`` in the
    pipeline, ``meta_keys``); training ``inputs['voxel_semantics']``/``['mask_camera']``
    (occupancy) and ``inputs['gt_masks_bev']`` (map; ``PackBEVDetInputs`` keys).
    ``predict`` adds ``pred_occ`` (uint8 ``(X, Y, Z)``) and ``pred_masks_bev`` (sigmoid
    ``(n_cls, Y', X')``), in the key-ego frame; ``mode='tensor'`` returns a tuple of the raw
    outputs (detection dict, occ logits ``(B, X, Y, Z, n_cls)``, map logits), those present.

    Args:
        occ_head, map_head (dict, optional): ``BEVOCCHead2D``/``BEVOCCHead3D``, ``BEVMapSegHead``
            (their ``input_bounds`` must be the BEV's: ``pc_range`` x / y with ``bev_w`` /
            ``bev_h`` cells); the rest as :class:`BEVFormer`.
    """

    def __init__(self, occ_head: Optional[dict] = None, map_head: Optional[dict] = None,
                 pts_bbox_head: Optional[dict] = None, **kwargs):
        if pts_bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs pts_bbox_head (BEVFormerHead: it holds '
                             'the BEV encoder); set transformer.decoder=None for no detection')
        super().__init__(pts_bbox_head=pts_bbox_head, **kwargs)
        self.occ_head = MODELS.build(occ_head) if occ_head is not None else None
        self.map_head = MODELS.build(map_head) if map_head is not None else None
        if self.occ_head is None and self.map_head is None:
            raise ValueError(f'{type(self).__name__} needs occ_head and / or map_head (plain '
                             'detection: use BEVFormer)')
        head = self.pts_bbox_head
        expect = [[head.pc_range[0], head.pc_range[3], head.real_w / head.bev_w],
                  [head.pc_range[1], head.pc_range[4], head.real_h / head.bev_h]]
        for name, h in (('occ_head', self.occ_head), ('map_head', self.map_head)):
            gt = getattr(h, 'grid_transform', None)
            if h is None:
                continue
            if gt is None or not np.allclose(gt.input_bounds, expect):
                raise ValueError(f'{name}.input_bounds {None if gt is None else gt.input_bounds} '
                                 f'must be the BEV grid {expect} (pc_range, bev_w x bev_h)')

    @property
    def with_detection(self) -> bool:
        return self.pts_bbox_head.with_detection

    def dense_bev(self, bev_embed: Tensor, metas: List[dict]) -> Tensor:
        """``(B, H*W, C)`` LiDAR-frame BEV -> ``(B, C, H, W)`` key-ego BEV."""
        head = self.pts_bbox_head
        if any(m.get('lidar2keyego') is None for m in metas):
            raise KeyError(f'{type(self).__name__} needs lidar2keyego in the metainfo: add '
                           "LidarToKeyEgo to the pipeline and 'lidar2keyego' to meta_keys")
        B, _, C = bev_embed.shape
        bev = bev_embed.permute(0, 2, 1).reshape(B, C, head.bev_h, head.bev_w)
        l2e = torch.as_tensor(np.stack([np.asarray(m['lidar2keyego']) for m in metas]))
        return lidar_bev_to_keyego(bev, l2e, head.pc_range)

    def _run(self, feats: List[Tensor], metas: List[dict], prev_bev: Optional[Tensor]):
        """Detection outputs (or None) and the BEV ``(B, HW, C)``."""
        if self.with_detection:
            preds = self.pts_bbox_head(feats, metas, prev_bev)
            return preds, preds['bev_embed']
        return None, self.pts_bbox_head(feats, metas, prev_bev, only_bev=True)

    def loss(self, inputs: dict, data_samples: SampleList, **kwargs) -> Dict[str, Tensor]:
        img, metas, prev_bev = self.current_frame(inputs, data_samples)
        preds, bev_embed = self._run(self.extract_img_feat(img), metas, prev_bev)
        losses: Dict[str, Tensor] = {}
        if preds is not None:
            losses.update(self.pts_bbox_head.loss_by_feat(
                preds, [s.gt_instances_3d for s in data_samples]))
        bev = self.dense_bev(bev_embed, metas)
        if self.occ_head is not None:
            sem = _required(inputs, 'voxel_semantics', 'the occupancy loss')
            losses.update(self.occ_head.loss(self.occ_head(bev), sem,
                                             inputs.get('mask_camera', None)))
        if self.map_head is not None:
            gt = _required(inputs, 'gt_masks_bev', 'the map segmentation loss')
            losses.update(self.map_head.loss(self.map_head(bev), gt))
        return losses

    def predict(self, inputs: dict, data_samples: SampleList, **kwargs) -> SampleList:
        preds, metas = self.test_heads(inputs, data_samples, only_bev=not self.with_detection)
        if self.with_detection:
            results = self.pts_bbox_head.predict_by_feat(preds, metas)
            data_samples = self.add_pred_to_datasample(data_samples, results)
            bev_embed = preds['bev_embed']
        else:
            bev_embed = preds
        bev = self.dense_bev(bev_embed, metas)
        if self.occ_head is not None:
            for i, occ in enumerate(self.occ_head.predict(self.occ_head(bev))):
                data_samples[i].pred_occ = occ
        if self.map_head is not None:
            for i, scores in enumerate(self.map_head.predict(self.map_head(bev))):
                data_samples[i].pred_masks_bev = scores
        return data_samples

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None, **kwargs):
        img, metas, prev_bev = self.current_frame(inputs, data_samples)
        preds, bev_embed = self._run(self.extract_img_feat(img), metas, prev_bev)
        bev = self.dense_bev(bev_embed, metas)
        outs = [] if preds is None else [preds]
        if self.occ_head is not None:
            outs.append(self.occ_head(bev))
        if self.map_head is not None:
            outs.append(self.map_head(bev))
        return tuple(outs)


@MODELS.register_module()
class BEVFormerSeg(BEVFormerOCC):
    """BEVFormer with a BEV map segmentation head (``map_head`` required); as
    :class:`BEVFormerOCC`."""

    def __init__(self, map_head: dict, **kwargs):
        super().__init__(map_head=map_head, **kwargs)
