"""``SparseBEVTransformer``: the container of the shared-weight decoder (upstream keys)."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS
from .decoder import SparseBEVTransformerDecoder


@MODELS.register_module()
class SparseBEVTransformer(BaseModule):
    """Holds ``decoder`` (:class:`SparseBEVTransformerDecoder`); NaNs in the outputs are
    replaced by 0 (as upstream).

    Args: as :class:`SparseBEVTransformerDecoder`.
    """

    def __init__(self, embed_dims: int = 256, num_frames: int = 8, num_points: int = 4,
                 num_layers: int = 6, num_levels: int = 4, num_classes: int = 10,
                 code_size: int = 10, pc_range: Sequence[float] = (), num_groups: int = 4,
                 layer_cfg: Optional[dict] = None, init_cfg=None):
        if init_cfg is not None:
            raise ValueError('SparseBEVTransformer: init_cfg is not supported (allowed: None); '
                             'init_weights() applies upstream\'s initialisation')
        super().__init__(None)
        self.embed_dims, self.pc_range = embed_dims, list(pc_range)
        self.decoder = SparseBEVTransformerDecoder(embed_dims, num_frames, num_points,
                                                   num_layers, num_levels, num_classes,
                                                   code_size, pc_range, num_groups, layer_cfg)

    def init_weights(self) -> None:
        self.decoder.init_weights()

    def forward(self, query_bbox: Tensor, query_feat: Tensor, mlvl_feats: List[Tensor],
                attn_mask: Optional[Tensor], lidar2img: Tensor, time_diff: Tensor,
                image_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        cls, bbox = self.decoder(query_bbox, query_feat, mlvl_feats, attn_mask, lidar2img,
                                 time_diff, image_hw)
        return torch.nan_to_num(cls), torch.nan_to_num(bbox)
