"""BEVDet / BEVDepth4D with occupancy and / or map segmentation heads (and optionally the
detection head): ``BEVDetOCC``, ``BEVDepth4DOCC``, ``BEVDetSeg``, ``BEVDepth4DSeg``."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import Tensor

from mmdet3d.registry import MODELS
from ptqat.bev_geometry import bda_flips
from ..bevdepth4d.bevdepth4d import BEVDepth4D
from ..bevdet.bevdet import BEVDet


def _required(inputs: dict, key: str, what: str) -> Tensor:
    if inputs.get(key, None) is None:
        raise KeyError(f'{what} needs inputs[{key!r}]: add the GT transform to the train pipeline '
                       f'and {key!r} to PackBEVDetInputs keys')
    return inputs[key]


def _unflip(x: Tensor, bda: Optional[Tensor], x_dim: int, y_dim: int) -> Tensor:
    """Undo a (test-time) BEV flip so that the prediction is in the key-ego frame."""
    if bda is None:
        return x
    fdx, fdy = bda_flips(bda.detach().cpu().double().numpy())
    dims = [d for d, f in ((x_dim, fdx), (y_dim, fdy)) if f]
    return x.flip(dims) if dims else x


class DenseTasksMixin:
    """``loss`` / ``predict`` / ``_forward`` over the detection, occupancy and map heads.

    The BEV feature of :meth:`extract_img_feat` (``(B, C, Y, X)``, BEV frame) feeds every head.

    * Training needs ``inputs['voxel_semantics']`` and ``['mask_camera']`` (occupancy,
      ``LoadOccGTFromFile``) and ``inputs['gt_masks_bev']`` (map, ``LoadBEVSegmentation``);
      losses ``loss_occ``, ``loss_<cls>_focal``, the detection losses and ``loss_depth``.
    * ``predict`` adds ``pred_occ`` (uint8 ``(X, Y, Z)``) and ``pred_masks_bev`` (sigmoid
      ``(n_cls, Y', X')``) to each data sample, in the key-ego frame (a test-time BEV flip is
      undone; other test-time BEV augmentations are an error), plus ``pred_instances_3d`` with
      a detection head.
    * ``_forward`` (``mode='tensor'``): tuple of the raw outputs (detection head outputs, occ
      logits ``(B, X, Y, Z, n_cls)``, map logits ``(B, n_cls, Y', X')``, those present).
    """

    def _build_dense_heads(self, occ_head: Optional[dict], map_head: Optional[dict]) -> None:
        self.occ_head = MODELS.build(occ_head) if occ_head is not None else None
        self.map_head = MODELS.build(map_head) if map_head is not None else None
        if self.occ_head is None and self.map_head is None and self.pts_bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs at least one of occ_head, map_head, '
                             'pts_bbox_head')

    def loss(self, inputs: dict, data_samples: list, **kwargs) -> Dict[str, Tensor]:
        bev, depth = self.extract_img_feat(inputs)
        losses: Dict[str, Tensor] = {}
        if self.pts_bbox_head is not None:
            losses.update(self.pts_bbox_head.loss([bev], data_samples))
        if self.occ_head is not None:
            sem = _required(inputs, 'voxel_semantics', 'the occupancy loss')
            mask = inputs.get('mask_camera', None)
            losses.update(self.occ_head.loss(self.occ_head(bev), sem, mask))
        if self.map_head is not None:
            gt = _required(inputs, 'gt_masks_bev', 'the map segmentation loss')
            losses.update(self.map_head.loss(self.map_head(bev), gt))
        losses.update(self.depth_losses(inputs, depth))
        return losses

    def predict(self, inputs: dict, data_samples: list, **kwargs) -> list:
        bev, _ = self.extract_img_feat(inputs)
        bda = inputs.get('bda', None)
        if self.pts_bbox_head is not None:
            results = self.pts_bbox_head.predict([bev], data_samples)
            for i, (res, sample) in enumerate(zip(results, data_samples)):
                results[i] = self.to_output_frame(res, sample, None if bda is None else bda[i])
            data_samples = self.add_pred_to_datasample(data_samples, results)
        if self.occ_head is not None:
            for i, occ in enumerate(self.occ_head.predict(self.occ_head(bev))):
                data_samples[i].pred_occ = _unflip(occ, None if bda is None else bda[i], 0, 1)
        if self.map_head is not None:
            for i, scores in enumerate(self.map_head.predict(self.map_head(bev))):
                data_samples[i].pred_masks_bev = _unflip(
                    scores, None if bda is None else bda[i], 2, 1)
        return data_samples

    def _forward(self, inputs: dict, data_samples: Optional[list] = None, **kwargs) -> tuple:
        bev, _ = self.extract_img_feat(inputs)
        outs: List = []
        if self.pts_bbox_head is not None:
            outs.append(self.pts_bbox_head([bev]))
        if self.occ_head is not None:
            outs.append(self.occ_head(bev))
        if self.map_head is not None:
            outs.append(self.map_head(bev))
        return tuple(outs)


@MODELS.register_module()
class BEVDetOCC(DenseTasksMixin, BEVDet):
    """BEVDet with an occupancy head (FlashOcc's ``BEVDetOCC``); ``pts_bbox_head`` optional.

    Args:
        occ_head (dict, optional): e.g. ``BEVOCCHead2D``; map_head (dict, optional):
            ``BEVMapSegHead``; the rest as :class:`BEVDet`.
    """

    def __init__(self, occ_head: Optional[dict] = None, map_head: Optional[dict] = None,
                 pts_bbox_head: Optional[dict] = None, **kwargs):
        super().__init__(pts_bbox_head=pts_bbox_head, **kwargs)
        self._build_dense_heads(occ_head, map_head)


@MODELS.register_module()
class BEVDepth4DOCC(DenseTasksMixin, BEVDepth4D):
    """BEVDepth4D with an occupancy head; arguments as :class:`BEVDetOCC` plus BEVDepth4D's."""

    def __init__(self, occ_head: Optional[dict] = None, map_head: Optional[dict] = None,
                 pts_bbox_head: Optional[dict] = None, **kwargs):
        super().__init__(pts_bbox_head=pts_bbox_head, **kwargs)
        self._build_dense_heads(occ_head, map_head)


@MODELS.register_module()
class BEVDetSeg(BEVDetOCC):
    """BEVDet with a BEV map segmentation head (``map_head`` required)."""

    def __init__(self, map_head: dict, **kwargs):
        super().__init__(map_head=map_head, **kwargs)


@MODELS.register_module()
class BEVDepth4DSeg(BEVDepth4DOCC):
    """BEVDepth4D with a BEV map segmentation head (``map_head`` required)."""

    def __init__(self, map_head: dict, **kwargs):
        super().__init__(map_head=map_head, **kwargs)
