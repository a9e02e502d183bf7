"""BEVDet components (registered in mmdet3d's ``MODELS`` on import)."""
from .bev_pool import bev_pool, voxel_pooling_prepare
from .bevdet import BEVDet, compute_sensor2keyegos, transform_boxes
from .centerhead import BEVDetCenterHead
from .custom_fpn import CustomFPN
from .custom_resnet import CustomResNet
from .data_preprocessor import BEVDetDataPreprocessor
from .fpn_lss import FPN_LSS
from .lss_view_transformer import LSSViewTransformer

__all__ = [
    'BEVDet', 'BEVDetCenterHead', 'BEVDetDataPreprocessor', 'CustomFPN',
    'CustomResNet', 'FPN_LSS', 'LSSViewTransformer', 'bev_pool',
    'voxel_pooling_prepare', 'compute_sensor2keyegos', 'transform_boxes'
]
