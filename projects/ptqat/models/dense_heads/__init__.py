"""Task heads on a dense BEV feature (occupancy, map segmentation) and the detectors that carry
them (registered in mmdet3d's ``MODELS`` on import)."""
from .dense_detectors import BEVDepth4DOCC, BEVDepth4DSeg, BEVDetOCC, BEVDetSeg, DenseTasksMixin
from .grid_transform import BEVGridTransform
from .map_seg_head import BEVMapSegHead, sigmoid_focal_loss
from .occ_head import BEVOCCHead2D, BEVOCCHead3D

__all__ = ['BEVDepth4DOCC', 'BEVDepth4DSeg', 'BEVDetOCC', 'BEVDetSeg', 'BEVGridTransform',
           'BEVMapSegHead', 'BEVOCCHead2D', 'BEVOCCHead3D', 'DenseTasksMixin',
           'sigmoid_focal_loss']
