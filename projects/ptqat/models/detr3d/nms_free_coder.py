"""``NMSFreeCoder``: top-k decoding of DETR3D-style predictions (no NMS)."""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from .util import denormalize_bbox


@TASK_UTILS.register_module()
class NMSFreeCoder:
    """Keep the ``max_num`` best (query, class) scores of the last decoder layer.

    Args:
        pc_range (sequence[float]): Point-cloud range (x0, y0, z0, x1, y1, z1), metres.
        post_center_range (sequence[float], optional): Keep boxes whose centre
            lies inside this range.
        max_num (int): Boxes kept per sample.
        score_threshold (float, optional): Drop lower scores.
        num_classes (int): Classes of the sigmoid classifier.
        voxel_size: Unused (config compatibility).
    """

    def __init__(self, pc_range: Sequence[float], voxel_size=None,
                 post_center_range: Optional[Sequence[float]] = None, max_num: int = 100,
                 score_threshold: Optional[float] = None, num_classes: int = 10):
        self.pc_range = list(pc_range)
        self.voxel_size = voxel_size
        self.post_center_range = None if post_center_range is None else list(post_center_range)
        self.max_num = max_num
        self.score_threshold = score_threshold
        self.num_classes = num_classes

    def encode(self):
        raise NotImplementedError('NMSFreeCoder only decodes')

    def decode_single(self, cls_scores: Tensor, bbox_preds: Tensor) -> Dict[str, Tensor]:
        """``(Q, C)`` logits and ``(Q, 10)`` codes -> dict of ``bboxes (K, 9)``,
        ``scores (K,)``, ``labels (K,)`` (``K <= max_num``, centres in metres)."""
        scores, indexes = cls_scores.sigmoid().view(-1).topk(min(self.max_num, cls_scores.numel()))
        labels = indexes % self.num_classes
        bbox_index = torch.div(indexes, self.num_classes, rounding_mode='floor')
        boxes = denormalize_bbox(bbox_preds[bbox_index], self.pc_range)
        mask = torch.ones_like(scores, dtype=torch.bool)
        if self.score_threshold is not None:
            mask &= scores > self.score_threshold
        if self.post_center_range is not None:
            rng = boxes.new_tensor(self.post_center_range)
            mask &= (boxes[:, :3] >= rng[:3]).all(1) & (boxes[:, :3] <= rng[3:]).all(1)
        return dict(bboxes=boxes[mask], scores=scores[mask], labels=labels[mask])

    def decode(self, preds_dicts: dict) -> List[Dict[str, Tensor]]:
        """Decode ``all_cls_scores[-1]`` ``(B, Q, C)`` and ``all_bbox_preds[-1]`` ``(B, Q, 10)``."""
        cls = preds_dicts['all_cls_scores'][-1]
        box = preds_dicts['all_bbox_preds'][-1]
        return [self.decode_single(cls[i], box[i]) for i in range(cls.size(0))]
