"""``HungarianAssigner3D``: one-to-one matching of DETR3D-style queries to GT boxes."""
from typing import Optional, Sequence

import torch
from mmdet.models.task_modules import AssignResult
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from .util import normalize_bbox


@TASK_UTILS.register_module()
class HungarianAssigner3D:
    """Hungarian matching on ``cls_cost + reg_cost`` (upstream's IoU cost is 0).

    Args:
        cls_cost (dict): A mmdet match cost on class scores, e.g.
            ``dict(type='mmdet.FocalLossCost', weight=2.0)`` (called with
            ``InstanceData(scores=...)`` / ``InstanceData(labels=...)``).
        reg_cost (dict): ``dict(type='BBox3DL1Cost', weight=0.25)`` on the
            first 8 normalised box-code entries.
        iou_cost (dict, optional): Accepted for config compatibility; only
            ``weight=0`` (upstream's "fake" cost) is allowed.
        pc_range (sequence[float]): Point-cloud range (kept for upstream
            compatibility of :func:`normalize_bbox`).
    """

    def __init__(self, cls_cost: dict, reg_cost: dict, iou_cost: Optional[dict] = None,
                 pc_range: Optional[Sequence[float]] = None):
        self.cls_cost = TASK_UTILS.build(cls_cost)
        self.reg_cost = TASK_UTILS.build(reg_cost)
        if iou_cost is not None and iou_cost.get('weight', 0.0) != 0.0:
            raise ValueError(f'HungarianAssigner3D: iou_cost weight {iou_cost["weight"]} is not '
                             'supported (allowed: 0, as upstream)')
        self.pc_range = pc_range

    def cost_matrix(self, bbox_pred: Tensor, cls_pred: Tensor, gt_bboxes: Tensor,
                    gt_labels: Tensor) -> Tensor:
        """``(Q, G)`` matching cost (``bbox_pred`` normalised codes, GT 9-dof boxes)."""
        cls_cost = self.cls_cost(InstanceData(scores=cls_pred), InstanceData(labels=gt_labels))
        normalized_gt = normalize_bbox(gt_bboxes, self.pc_range)
        reg_cost = self.reg_cost(bbox_pred[:, :8], normalized_gt[:, :8])
        return cls_cost + reg_cost

    @staticmethod
    def assign_from_cost(cost: Tensor, gt_labels: Tensor) -> AssignResult:
        """Minimum-cost one-to-one assignment of a ``(Q, G)`` cost matrix.

        Returns an :class:`AssignResult` whose ``gt_inds`` are 0 for
        unmatched queries and ``1 + gt index`` for matched ones.
        """
        num_queries, num_gts = cost.shape
        gt_inds = cost.new_zeros((num_queries,), dtype=torch.long)
        labels = cost.new_full((num_queries,), -1, dtype=torch.long)
        if num_gts > 0 and num_queries > 0:
            c = torch.nan_to_num(cost.detach().float().cpu(), nan=100.0, posinf=1e8, neginf=-1e8)
            rows, cols = linear_sum_assignment(c.numpy())
            rows = torch.from_numpy(rows).to(cost.device)
            cols = torch.from_numpy(cols).to(cost.device)
            gt_inds[rows] = cols + 1
            labels[rows] = gt_labels[cols]
        return AssignResult(num_gts, gt_inds, None, labels=labels)

    def assign(self, bbox_pred: Tensor, cls_pred: Tensor, gt_bboxes: Tensor, gt_labels: Tensor,
               gt_bboxes_ignore=None) -> AssignResult:
        """Match ``Q`` predictions to ``G`` GT boxes.

        Args:
            bbox_pred: ``(Q, 10)`` normalised codes (cx, cy in metres).
            cls_pred: ``(Q, num_classes)`` logits.
            gt_bboxes: ``(G, 9)`` boxes (gravity centre, sizes, yaw, velocity).
            gt_labels: ``(G,)`` class indices.
        """
        if gt_bboxes_ignore is not None:
            raise ValueError('HungarianAssigner3D: gt_bboxes_ignore is not supported (got a '
                             'tensor; allowed: None)')
        if gt_bboxes.size(0) == 0 or bbox_pred.size(0) == 0:
            cost = bbox_pred.new_zeros((bbox_pred.size(0), gt_bboxes.size(0)))
        else:
            cost = self.cost_matrix(bbox_pred, cls_pred, gt_bboxes, gt_labels)
        return self.assign_from_cost(cost, gt_labels)
