"""Multi-view image features as BEVFormer and SparseBEV compute them (upstream GridMask defaults)."""
from typing import List, Optional

from torch import Tensor, nn

from mmdet3d.registry import MODELS

#: upstream BEVFormer / SparseBEV GridMask settings (``grid_mask`` config entries override them)
UPSTREAM_GRID_MASK = dict(type='GridMask', use_h=True, use_w=True, rotate=1, offset=False, ratio=0.5,
                          mode=1, prob=0.7)


def build_grid_mask(overrides: Optional[dict] = None) -> nn.Module:
    """``GridMask`` with the upstream settings, updated by ``overrides``."""
    return MODELS.build(dict(UPSTREAM_GRID_MASK, **(overrides or {})))


def multiview_features(img: Tensor, backbone: nn.Module, neck: nn.Module,
                       grid_mask: Optional[nn.Module] = None) -> List[Tensor]:
    """``(B, V, 3, H, W)`` images (V views, or frames × views) -> per FPN level
    ``(B, V, C, H_l, W_l)``; ``grid_mask`` (training only, by the caller) masks the images first."""
    B, V = img.shape[:2]
    x = img.reshape(B * V, *img.shape[2:])
    if grid_mask is not None:
        x = grid_mask(x)
    feats = backbone(x)
    if isinstance(feats, dict):
        feats = list(feats.values())
    return [f.view(B, V, *f.shape[1:]) for f in neck(feats)]
