"""Evaluation helpers on top of mmdet3d's metrics; ``Occ3DMetric`` and ``BEVMapSegMetric``
(registered in mmdet3d's ``METRICS`` on import)."""
from .map_seg_metric import MAP_CLASSES, BEVMapSegMetric, map_seg_counts
from .occ_metric import OCC3D_CLASSES, Occ3DMetric, occ_confusion, per_class_iou

__all__ = ['BEVMapSegMetric', 'MAP_CLASSES', 'OCC3D_CLASSES', 'Occ3DMetric', 'map_seg_counts',
           'occ_confusion', 'per_class_iou']
