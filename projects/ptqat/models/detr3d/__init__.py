"""Pieces shared by the DETR3D-style detectors (BEVFormer, SparseBEV).

Registered in mmdet3d's registries on import: ``HungarianAssigner3D``,
``BBox3DL1Cost``, ``NMSFreeCoder`` (``TASK_UTILS``) and ``GridMask`` (``MODELS``).
"""
from .grid_mask import GridMask
from .hungarian_assigner_3d import HungarianAssigner3D
from .match_cost import BBox3DL1Cost
from .multiview import UPSTREAM_GRID_MASK, build_grid_mask, multiview_features
from .nms_free_coder import NMSFreeCoder
from .rotate import rotate, rotation_grid
from .util import denormalize_bbox, normalize_bbox

__all__ = ['GridMask', 'HungarianAssigner3D', 'BBox3DL1Cost', 'NMSFreeCoder', 'rotate',
           'rotation_grid', 'normalize_bbox', 'denormalize_bbox', 'UPSTREAM_GRID_MASK', 'build_grid_mask',
           'multiview_features']
