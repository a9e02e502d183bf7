"""``PackBEVDetInputs``: pack the BEVDet camera tensors into ``inputs`` and the GT / metainfo
into a ``Det3DDataSample`` (mmdet3d's ``Pack3DDetInputs`` only routes ``img``/``points`` into
``inputs``)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.registry import TRANSFORMS

#: camera tensors that go to ``inputs`` (float32), with their per-sample shape
CAMERA_INPUT_KEYS = {
    'sensor2egos': '(N, 4, 4)',
    'ego2globals': '(N, 4, 4)',
    'sensor2keyegos': '(N, 4, 4)',
    'intrins': '(N, 3, 3)',
    'post_rots': '(N, 3, 3)',
    'post_trans': '(N, 3)',
    'bda': '(4, 4)',
}

#: dense training targets packed into ``inputs`` like the camera tensors (float32)
TARGET_INPUT_KEYS = {
    'gt_depth': '(N, H, W) metres, 0 = no LiDAR point (PointToMultiViewDepth)',
}

#: dense label targets packed into ``inputs`` with their integer / bool dtype kept
DENSE_TARGET_KEYS = {
    'voxel_semantics': '(X, Y, Z) uint8 Occ3D labels 0..17, BEV frame (LoadOccGTFromFile)',
    'mask_camera': '(X, Y, Z) bool camera visibility',
    'mask_lidar': '(X, Y, Z) bool LiDAR visibility',
    'gt_masks_bev': '(C, Y, X) uint8 0/1 BEV map masks (LoadBEVSegmentation)',
}

DEFAULT_KEYS = ('img', 'sensor2egos', 'ego2globals', 'sensor2keyegos', 'intrins', 'post_rots',
                'post_trans', 'bda', 'gt_depth', 'gt_bboxes_3d', 'gt_labels_3d')
DEFAULT_META_KEYS = ('sample_idx', 'token', 'lidar2keyego', 'timestamp', 'scene_token',
                     'cam_names', 'img_path', 'img_shape', 'ori_shape', 'num_views',
                     'img_aug_params', 'bda_aug_params', 'box_type_3d', 'box_mode_3d',
                     'num_frames', 'adjacent_tokens')


def _img_tensor(img) -> torch.Tensor:
    """``(N, 3, H, W)`` tensor from an (N, 3, H, W) array/tensor or a list of (H, W, 3)."""
    if isinstance(img, torch.Tensor):
        return img
    if isinstance(img, (list, tuple)):  # mmdet3d's multi-view convention: list of HWC
        return torch.from_numpy(np.ascontiguousarray(np.stack(img).transpose(0, 3, 1, 2)))
    img = np.asarray(img)
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f'expected img of shape (N, 3, H, W), got {img.shape}')
    return torch.from_numpy(np.ascontiguousarray(img))


@TRANSFORMS.register_module()
class PackBEVDetInputs(Pack3DDetInputs):
    """Pack one BEVDet sample for :class:`BEVDetDataPreprocessor` and the model.

    Output ``inputs`` dict (only the keys in ``keys`` that are present):

    * ``img``: uint8 (or float) tensor ``(N, 3, H, W)``, RGB, un-normalised;
    * camera tensors (float32): ``sensor2egos``/``ego2globals``/``sensor2keyegos``
      ``(N, 4, 4)``, ``intrins``/``post_rots`` ``(N, 3, 3)``, ``post_trans`` ``(N, 3)``,
      ``bda`` ``(4, 4)``;
    * ``gt_depth`` float32 ``(N, H, W)`` when the pipeline made it (BEVDepth);
    * dense labels with their dtype (:data:`DENSE_TARGET_KEYS`): ``voxel_semantics``,
      ``mask_camera``, ``mask_lidar`` (occupancy), ``gt_masks_bev`` (map segmentation).

    ``data_samples``: ``Det3DDataSample`` with ``gt_instances_3d.bboxes_3d`` (BEV frame) and
    ``.labels_3d`` when present, and the ``meta_keys`` found in the results as metainfo
    (``lidar2keyego`` 4×4 for the model's ``predict``, ``sample_idx`` for ``NuScenesMetric``,
    ``token``, ...). ``eval_ann_info`` is attached as by ``Pack3DDetInputs``.

    Args:
        keys (sequence[str]): Input and GT keys to pack.
        meta_keys (sequence[str]): Keys copied into the metainfo.
    """

    INPUTS_KEYS = (['points', 'img'] + list(CAMERA_INPUT_KEYS) + list(TARGET_INPUT_KEYS)
                   + list(DENSE_TARGET_KEYS))

    def __init__(self, keys: Sequence[str] = DEFAULT_KEYS,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        super().__init__(keys=tuple(keys), meta_keys=tuple(meta_keys))

    def pack_single_results(self, results: dict) -> dict:
        inputs = {}
        rest = dict(results)
        if 'img' in self.keys and 'img' in rest:
            inputs['img'] = _img_tensor(rest.pop('img'))
        for key in list(CAMERA_INPUT_KEYS) + list(TARGET_INPUT_KEYS):
            if key in self.keys and key in rest:
                value = rest.pop(key)
                inputs[key] = torch.as_tensor(np.asarray(value), dtype=torch.float32)
        for key in DENSE_TARGET_KEYS:
            if key in self.keys and key in rest:
                inputs[key] = torch.from_numpy(np.ascontiguousarray(rest.pop(key)))
        packed = super().pack_single_results(rest)
        packed['inputs'].update(inputs)
        return packed
