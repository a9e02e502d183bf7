"""``SparseBEV`` detector: all frames' images through one backbone, sparse query head."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mmdet3d.models.detectors import MVXTwoStageDetector
from mmdet3d.registry import MODELS
from ..detr3d.multiview import build_grid_mask, multiview_features
from mmdet3d.structures import Det3DDataSample

SampleList = List[Det3DDataSample]


def time_differences(timestamps: np.ndarray, num_views: int) -> Tensor:
    """``(B, T·N)`` image timestamps (s, frame-major, key frame first) -> ``(B, T)`` seconds
    from each frame to the key frame, averaged over the N cameras (>= 0 for past frames)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    B, TN = ts.shape
    if TN % num_views:
        raise ValueError(f'{TN} image timestamps per sample is not a multiple of '
                         f'{num_views} views')
    ts = ts.reshape(B, TN // num_views, num_views)
    return torch.from_numpy((ts[:, :1] - ts).mean(-1).astype(np.float32))


def _image_hw(meta: dict) -> Tuple[int, int]:
    shape = meta['img_shape']
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return int(shape[0]), int(shape[1])


@MODELS.register_module()
class SparseBEV(MVXTwoStageDetector):
    """SparseBEV (keys as upstream: ``img_backbone``, ``img_neck``, ``pts_bbox_head``).

    Inputs (after ``Det3DDataPreprocessor``): ``inputs['imgs']`` ``(B, T·N, 3, H, W)``,
    frame-major with the key frame first (see ``LoadMultiViewImageFromMultiSweeps``). Each
    data sample's metainfo has ``lidar2img (T·N, 4, 4)`` (current LiDAR frame -> each
    frame's image, ego motion included), ``img_timestamp (T·N,)`` seconds and
    ``img_shape`` (the network input H, W before padding).

    Args:
        num_views: N cameras per frame (6 for nuScenes).
        use_grid_mask: GridMask on the images in training (upstream: ratio 0.5, prob 0.7).
        grid_mask: ``GridMask`` arguments.
    """

    def __init__(self, num_views: int = 6, use_grid_mask: bool = True,
                 grid_mask: Optional[dict] = None, img_backbone: Optional[dict] = None,
                 img_neck: Optional[dict] = None, pts_bbox_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None,
                 occ_head: Optional[dict] = None, map_head: Optional[dict] = None):
        for name, head in (('occ_head', occ_head), ('map_head', map_head)):
            if head is not None:
                raise ValueError(
                    f'SparseBEV has no dense BEV feature (its queries sample the image features '
                    f'directly), so {name}={head!r} has nothing to run on; use a dense-BEV model '
                    f'for occupancy / map segmentation: BEVDetOCC, BEVDepth4DOCC, BEVDetSeg, '
                    f'BEVDepth4DSeg, BEVFormerOCC or BEVFormerSeg (configs/*-occ, configs/*-seg)')
        super().__init__(img_backbone=img_backbone, img_neck=img_neck,
                         pts_bbox_head=pts_bbox_head, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.grid_mask = build_grid_mask(grid_mask)
        self.use_grid_mask = use_grid_mask
        self.num_views = num_views

    def extract_img_feat(self, img: Tensor) -> List[Tensor]:
        """``(B, T·N, 3, H, W)`` -> per FPN level ``(B, T·N, C, H_l, W_l)``."""
        if img.dim() != 5:
            raise ValueError(f'SparseBEV: inputs["imgs"] must be (B, T*N, 3, H, W), got shape '
                             f'{tuple(img.shape)}')
        return multiview_features(img, self.img_backbone, self.img_neck,
                                  self.grid_mask if self.use_grid_mask and self.training else None)

    def camera_inputs(self, data_samples: SampleList, device) -> Tuple[Tensor, Tensor, tuple]:
        """``lidar2img (B, T·N, 4, 4)``, ``time_diff (B, T)`` and ``(H, W)`` from the metas."""
        metas = [s.metainfo for s in data_samples]
        for key in ('lidar2img', 'img_timestamp', 'img_shape'):
            if key not in metas[0]:
                raise KeyError(f'SparseBEV needs {key!r} in the data sample metainfo (add it to '
                               'the Pack3DDetInputs meta_keys)')
        l2i = torch.from_numpy(np.stack([np.asarray(m['lidar2img'], dtype=np.float32)
                                         for m in metas])).to(device)
        td = time_differences(np.stack([np.asarray(m['img_timestamp']) for m in metas]),
                              self.num_views).to(device)
        return l2i, td, _image_hw(metas[0])

    def _head(self, inputs: dict, data_samples: SampleList, gts=None) -> dict:
        img = inputs['imgs']
        feats = self.extract_img_feat(img)
        l2i, td, hw = self.camera_inputs(data_samples, img.device)
        if l2i.shape[1] != img.shape[1]:
            raise ValueError(f'SparseBEV: {img.shape[1]} images but {l2i.shape[1]} lidar2img '
                             'matrices per sample')
        return self.pts_bbox_head(feats, l2i, td, hw, gts)

    def loss(self, inputs: dict, data_samples: SampleList, **kwargs) -> Dict[str, Tensor]:
        """Matching (and denoising) losses of every decoder stage."""
        gts = self.pts_bbox_head.gt_tensors([s.gt_instances_3d for s in data_samples],
                                            inputs['imgs'].device)
        preds = self._head(inputs, data_samples, gts)
        return self.pts_bbox_head.loss_by_feat(preds, gts)

    def predict(self, inputs: dict, data_samples: SampleList, **kwargs) -> SampleList:
        """Boxes in the current LiDAR frame (``pred_instances_3d``)."""
        preds = self._head(inputs, data_samples)
        return self.add_pred_to_datasample(data_samples, self.pts_bbox_head.predict_by_feat(preds))

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None, **kwargs):
        """Raw head outputs (no denoising queries)."""
        return self._head(inputs, data_samples)
