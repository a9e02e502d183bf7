"""Data transforms of the BEV models (registered in ``mmdet3d.registry.TRANSFORMS`` on import).

BEVDet pipeline (train; test uses ``is_train=False`` and no annotations)::

    PrepareImageInputs -> LoadAnnotations3D -> LidarToKeyEgo -> BEVAug
        -> ObjectRangeFilter -> ObjectNameFilter -> PackBEVDetInputs

BEVDepth adds ``LoadPointsFromFile -> PointToMultiViewDepth`` (LiDAR depth targets) after
``PrepareImageInputs``.

SparseBEV: see :mod:`.sparsebev_transforms`.

Occupancy / map segmentation add ``LoadOccGTFromFile`` / ``LoadBEVSegmentation`` after
``BEVAug`` (train and test pipelines; in test mode they fill ``eval_ann_info`` for the metrics).
"""
from .bev_transforms import BEVAug, LidarToKeyEgo, bda_matrix, lidar2keyego_matrix
from .depth_targets import PointToMultiViewDepth, project_to_depth_map
from .dense_targets import MAP_LAYERS, LoadBEVSegmentation, LoadOccGTFromFile
from .formatting import CAMERA_INPUT_KEYS, DENSE_TARGET_KEYS, PackBEVDetInputs
from .sparsebev_transforms import (SPARSEBEV_CAMS, GlobalRotScaleTransImage,
                                   LoadMultiViewImageFromMultiSweeps, RandomTransformImage,
                                   choose_sweeps, ida_matrix, sweep_lidar2img)
from .prepare_image_inputs import BEVDET_CAMS, PrepareImageInputs, img_aug_matrix

__all__ = [
    'BEVAug', 'LidarToKeyEgo', 'LoadBEVSegmentation', 'LoadOccGTFromFile', 'MAP_LAYERS',
    'DENSE_TARGET_KEYS', 'PackBEVDetInputs', 'PointToMultiViewDepth',
    'PrepareImageInputs', 'BEVDET_CAMS', 'project_to_depth_map',
    'CAMERA_INPUT_KEYS', 'bda_matrix', 'img_aug_matrix', 'lidar2keyego_matrix',
    'SPARSEBEV_CAMS', 'GlobalRotScaleTransImage', 'LoadMultiViewImageFromMultiSweeps',
    'RandomTransformImage', 'choose_sweeps', 'ida_matrix', 'sweep_lidar2img'
]
from .bevformer_inputs import LoadBEVFormerImages, lidar2img_matrix  # noqa: E402

__all__ += ['LoadBEVFormerImages', 'lidar2img_matrix']
