"""``BEVMapSegHead``: BEV map segmentation (BEVFusion's ``BEVSegmentationHead``) on a BEVDet
``(B, C, Y, X)`` feature."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ptqat.bev_geometry import MAP_SEG_BOUND
from .grid_transform import BEVGridTransform


def sigmoid_focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0,
                       alpha: float = -1.0) -> Tensor:
    """Mean sigmoid focal loss (``torchvision.ops.sigmoid_focal_loss``, ``reduction='mean'``).

    ``alpha < 0`` disables the class balancing (BEVFusion's setting); ``gamma = 0`` with
    ``alpha < 0`` is binary cross-entropy with logits.
    """
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.mean()


@MODELS.register_module()
class BEVMapSegHead(nn.Module):
    """Resample the BEV feature to the map grid, conv stack, one logit map per class.

    ``(B, C, Y, X)`` -> :class:`BEVGridTransform` (``input_bounds`` -> ``output_bounds``,
    skipped when ``input_bounds`` is None) -> ``num_convs`` x ``Conv3x3(no bias) - BN - ReLU``
    -> ``Conv1x1`` -> logits ``(B, n_cls, Y', X')`` (``[y, x]``, the layout of
    ``LoadBEVSegmentation``). Loss: per-class sigmoid focal loss (``gamma=2``, ``alpha=-1``:
    BEVFusion), keys ``loss_<cls>_focal`` (``loss_type='xent'``: BCE, ``loss_<cls>_xent``);
    optional per-class weights.

    Args:
        in_channels (int): BEV feature channels.
        classes (sequence[str]): class names (channel order of ``gt_masks_bev``).
        input_bounds, output_bounds: ``(xbound, ybound)``; output default ±50 m at 0.5 m.
        channels (int, optional): conv width (default ``in_channels``).
        num_convs (int): 3x3 conv blocks (BEVFusion: 2).
        loss_type (str): ``'focal'`` or ``'xent'``.
        gamma, alpha (float): focal parameters.
        class_weights (dict, optional): ``{cls: weight}`` (HENet style), default 1.
    """

    def __init__(self, in_channels: int, classes: Sequence[str],
                 input_bounds: Optional[Sequence] = None,
                 output_bounds: Sequence = (MAP_SEG_BOUND, MAP_SEG_BOUND),
                 channels: Optional[int] = None, num_convs: int = 2, loss_type: str = 'focal',
                 gamma: float = 2.0, alpha: float = -1.0,
                 class_weights: Optional[Dict[str, float]] = None):
        super().__init__()
        if loss_type not in ('focal', 'xent'):
            raise ValueError(f"loss_type must be 'focal' or 'xent', got {loss_type!r}")
        unknown = set(class_weights or {}) - set(classes)
        if unknown:
            raise ValueError(f'class_weights for unknown classes {sorted(unknown)}; classes: '
                             f'{list(classes)}')
        self.classes = tuple(classes)
        self.loss_type, self.gamma, self.alpha = loss_type, gamma, alpha
        self.class_weights = dict(class_weights or {})
        self.grid_transform = (BEVGridTransform(input_bounds, output_bounds)
                               if input_bounds is not None else None)
        ch = channels or in_channels
        layers: List[nn.Module] = []
        c_in = in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(c_in, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch),
                       nn.ReLU(inplace=True)]
            c_in = ch
        layers.append(nn.Conv2d(c_in, len(self.classes), 1))
        self.classifier = nn.Sequential(*layers)

    def forward(self, bev: Tensor) -> Tensor:
        """``(B, C, Y, X)`` -> logits ``(B, n_cls, Y', X')``."""
        if self.grid_transform is not None:
            bev = self.grid_transform(bev)
        return self.classifier(bev)

    def loss(self, logits: Tensor, gt_masks_bev: Tensor) -> Dict[str, Tensor]:
        """One loss per class; ``gt_masks_bev`` ``(B, n_cls, Y', X')`` 0/1."""
        if logits.shape != gt_masks_bev.shape:
            raise ValueError(f'map logits {tuple(logits.shape)} do not match gt_masks_bev '
                             f'{tuple(gt_masks_bev.shape)}')
        target = gt_masks_bev.to(logits.dtype)
        gamma = self.gamma if self.loss_type == 'focal' else 0.0
        alpha = self.alpha if self.loss_type == 'focal' else -1.0
        out = {}
        for i, name in enumerate(self.classes):
            loss = sigmoid_focal_loss(logits[:, i], target[:, i], gamma, alpha)
            out[f'loss_{name}_{self.loss_type}'] = loss * self.class_weights.get(name, 1.0)
        return out

    @staticmethod
    def predict(logits: Tensor) -> List[Tensor]:
        """Per sample, ``(n_cls, Y', X')`` sigmoid scores."""
        return list(torch.sigmoid(logits))
