"""``BBox3DL1Cost``: L1 matching cost between normalised 3D box codes."""
import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS


@TASK_UTILS.register_module()
class BBox3DL1Cost:
    """``weight * ||pred - gt||_1`` for every (prediction, GT) pair.

    Args:
        weight (float): Cost weight.
    """

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def __call__(self, bbox_pred: Tensor, gt_bboxes: Tensor) -> Tensor:
        """``(Q, D)`` and ``(G, D)`` normalised codes -> ``(Q, G)`` cost."""
        return torch.cdist(bbox_pred, gt_bboxes, p=1) * self.weight
