"""BEVDepth4D components (registered in mmdet3d's ``MODELS``/``HOOKS``)."""
from .bevdepth4d import BEVDepth4D, ego_motion
from .depth_net import ASPP, DepthNet, Mlp, SELayer
from .sequential_control_hook import SequentialControlHook
from .view_transformer import LSSViewTransformerBEVDepth

__all__ = [
    'ASPP', 'BEVDepth4D', 'DepthNet', 'LSSViewTransformerBEVDepth', 'Mlp',
    'SELayer', 'SequentialControlHook', 'ego_motion'
]
