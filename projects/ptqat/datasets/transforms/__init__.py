"""Data transforms of the BEV models (registered in ``mmdet3d.registry.TRANSFORMS`` on import).

BEVDet pipeline (train; test uses ``is_train=False`` and no annotations)::

    PrepareImageInputs -> LoadAnnotations3D -> LidarToKeyEgo -> BEVAug
        -> ObjectRangeFilter -> ObjectNameFilter -> PackBEVDetInputs
"""
from .bev_transforms import BEVAug, LidarToKeyEgo, bda_matrix, lidar2keyego_matrix
from .formatting import CAMERA_INPUT_KEYS, PackBEVDetInputs
from .prepare_image_inputs import BEVDET_CAMS, PrepareImageInputs, img_aug_matrix

__all__ = [
    'BEVAug', 'LidarToKeyEgo', 'PackBEVDetInputs', 'PrepareImageInputs', 'BEVDET_CAMS',
    'CAMERA_INPUT_KEYS', 'bda_matrix', 'img_aug_matrix', 'lidar2keyego_matrix'
]
