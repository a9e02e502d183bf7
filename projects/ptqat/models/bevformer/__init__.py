"""BEVFormer for mmdet3d 1.x (registered in mmdet3d's ``MODELS`` on import)."""
from .bevformer import BEVFormer, can_bus_deltas
from .bevformer_head import BEVFormerHead
from .data_preprocessor import BEVFormerDataPreprocessor
from .decoder import DetectionTransformerDecoder
from .dense_bevformer import BEVFormerOCC, BEVFormerSeg, lidar_bev_to_keyego
from .encoder import BEVFormerEncoder, BEVFormerLayer, point_sampling
from .spatial_cross_attention import MSDeformableAttention3D, SpatialCrossAttention
from .temporal_self_attention import TemporalSelfAttention
from .transformer import PerceptionTransformer, bev_shift, rotate_prev_bev

__all__ = [
    'BEVFormer', 'BEVFormerDataPreprocessor', 'BEVFormerHead', 'BEVFormerEncoder', 'BEVFormerLayer',
    'BEVFormerOCC', 'BEVFormerSeg', 'lidar_bev_to_keyego',
    'DetectionTransformerDecoder', 'MSDeformableAttention3D', 'PerceptionTransformer',
    'SpatialCrossAttention', 'TemporalSelfAttention', 'bev_shift', 'can_bus_deltas',
    'point_sampling', 'rotate_prev_bev'
]
