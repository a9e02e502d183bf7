"""``DetectionTransformerDecoder``: DETR decoder with iterative 3D reference-point refinement."""
from typing import Optional

import torch
from mmcv.cnn.bricks.transformer import TransformerLayerSequence
from mmdet.models.layers.transformer import inverse_sigmoid
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class DetectionTransformerDecoder(TransformerLayerSequence):
    """Layers of (MultiheadAttention, norm, MultiScaleDeformableAttention on
    the BEV, norm, FFN, norm), sequence first ``(Q, B, C)``.

    After each layer ``l`` with ``reg_branches``, the reference points
    ``(x, y, z)`` (sigmoid space) are refined from ``reg_branches[l]``'s
    outputs 0, 1 and 4 and detached.

    Args:
        return_intermediate (bool): Must be True (the head uses every layer).
    """

    def __init__(self, *args, return_intermediate: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not return_intermediate:
            raise ValueError('DetectionTransformerDecoder: return_intermediate=False is not '
                             'supported (allowed: True)')
        self.return_intermediate = return_intermediate

    def forward(self, query: Tensor, *args, reference_points: Tensor,
                reg_branches: Optional[nn.ModuleList] = None,
                key_padding_mask: Optional[Tensor] = None, **kwargs):
        """Decode.

        Args:
            query: ``(Q, B, C)``; also ``value (HW, B, C)``, ``query_pos``,
                ``spatial_shapes``, ``level_start_index`` in kwargs.
            reference_points: ``(B, Q, 3)`` in [0, 1].

        Returns:
            ``(L, Q, B, C)`` states and ``(L, B, Q, 3)`` reference points.
        """
        output = query
        states, refs = [], []
        for lid, layer in enumerate(self.layers):
            ref_input = reference_points[..., :2].unsqueeze(2)  # (B, Q, 1, 2)
            output = layer(output, *args, reference_points=ref_input,
                           key_padding_mask=key_padding_mask, **kwargs)
            if reg_branches is not None:
                tmp = reg_branches[lid](output.permute(1, 0, 2))
                new_ref = torch.cat([
                    tmp[..., :2] + inverse_sigmoid(reference_points[..., :2]),
                    tmp[..., 4:5] + inverse_sigmoid(reference_points[..., 2:3])
                ], -1)
                reference_points = new_ref.sigmoid().detach()
            states.append(output)
            refs.append(reference_points)
        return torch.stack(states), torch.stack(refs)
