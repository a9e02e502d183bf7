"""``SparseBEVHungarianAssigner3D``: the shared assigner with SparseBEV's matching cost."""
from typing import Optional, Sequence

from torch import Tensor
from mmengine.structures import InstanceData

from mmdet3d.registry import TASK_UTILS
from ..detr3d import HungarianAssigner3D, normalize_bbox


@TASK_UTILS.register_module()
class SparseBEVHungarianAssigner3D(HungarianAssigner3D):
    """As :class:`HungarianAssigner3D`, but the L1 cost runs on the ``code_weights``-weighted
    codes including the velocity (upstream SparseBEV calls its assigner with
    ``code_weights`` and ``with_velo=True``).

    Args:
        code_weights (sequence[float], optional): per-entry weights of the 10-entry code.
        with_velo (bool): include (vx, vy) in the L1 cost.
    """

    def __init__(self, *args, code_weights: Optional[Sequence[float]] = None,
                 with_velo: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.code_weights = None if code_weights is None else list(code_weights)
        self.with_velo = with_velo

    def cost_matrix(self, bbox_pred: Tensor, cls_pred: Tensor, gt_bboxes: Tensor,
                    gt_labels: Tensor) -> Tensor:
        cls_cost = self.cls_cost(InstanceData(scores=cls_pred), InstanceData(labels=gt_labels))
        gt = normalize_bbox(gt_bboxes, self.pc_range)
        pred = bbox_pred
        if self.code_weights is not None:
            w = pred.new_tensor(self.code_weights)
            pred, gt = pred * w, gt * w[:gt.shape[-1]]
        d = 10 if self.with_velo else 8
        return cls_cost + self.reg_cost(pred[:, :d], gt[:, :d])
