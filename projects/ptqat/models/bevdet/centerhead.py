"""BEVDet's CenterHead: mmdet3d ``CenterHead`` + Scale-NMS + split L1 loss."""
from numbers import Number
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet3d.models.dense_heads.centerpoint_head import CenterHead
from mmdet3d.models.layers import circle_nms, nms_bev
from mmdet3d.registry import MODELS
from mmdet3d.structures import LiDARInstance3DBoxes, xywhr2xyxyr

#: regression groups of the 10-dim anno box of the task-specific L1 loss
_REG_GROUPS = (('xy', 0, 2), ('z', 2, 3), ('whl', 3, 6), ('yaw', 6, 8),
               ('vel', 8, 10))


def _per_task(value, task_id: int):
    """``value[task_id]`` for list/tuple values, else ``value``."""
    if isinstance(value, (list, tuple)):
        return value[task_id]
    return value


@MODELS.register_module()
class BEVDetCenterHead(CenterHead):
    """CenterHead of BEVDet (dev3.0) on top of mmdet3d 1.x ``CenterHead``.

    Module structure and ``state_dict`` keys are those of mmdet3d's
    ``CenterHead`` (``shared_conv``, ``task_heads.{t}.{reg,height,dim,rot,
    vel,heatmap}``), identical to the official BEVDet checkpoint.  Additions:

    * ``task_specific`` (default True): the box L1 loss is reported per
      regression group, ``task{t}.loss_{xy,z,whl,yaw,vel}``; their sum equals
      the plain ``loss_bbox``.
    * **Scale-NMS** (``test_cfg``):

      - ``nms_type``: ``'rotate'`` or ``'circle'``, or a list per task;
      - ``nms_thr``: IoU threshold of the rotated BEV NMS, or a list per task;
      - ``nms_rescale_factor``: list per task; each entry is a number (all
        classes of that task) or a list with one factor per class of the
        task. Before the class-agnostic rotated BEV NMS (mmdet3d
        ``nms_bev`` -> mmcv ``nms_rotated``) the box sizes (l, w, h) of a
        class-``c`` box are multiplied by ``factor[c]``; the returned boxes
        keep their original sizes.  Factors > 1 (pedestrian 1.5, cone 3.5)
        make small neighbouring boxes overlap so that duplicates are
        suppressed; factors < 1 (bus 0.4) let large neighbours survive.
      - ``circle``: mmdet3d ``circle_nms`` on centres with
        ``min_radius[task]`` (squared-distance threshold, as upstream).

    Decoded boxes are ``(x, y, z_bottom, l, w, h, yaw, vx, vy)`` in the frame
    of the BEV feature map (see ``BEVDet``), wrapped in
    ``metainfo['box_type_3d']`` (default ``LiDARInstance3DBoxes``).
    """

    def __init__(self, *args, task_specific: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_specific = task_specific

    # ----------------------------------------------------------------- loss
    def get_targets(self, batch_gt_instances_3d: List[InstanceData]
                    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], List[Tensor]]:
        """mmdet3d's targets (heat maps, anno boxes, inds, masks; one tensor per task), drawn
        on the CPU.

        mmdet3d draws each object's Gaussian in a Python loop with a host read (``int()``)
        per object; on a GPU that is hundreds of tiny kernels and device syncs per batch,
        which dominated a tiny model's training step. The boxes are copied to the CPU once,
        the targets drawn there (the same code, the same values as a CPU run) and moved to
        the boxes' device once.
        """
        device = batch_gt_instances_3d[0].labels_3d.device
        if device.type == 'cpu':
            return super().get_targets(batch_gt_instances_3d)
        on_cpu = [gt.to('cpu') for gt in batch_gt_instances_3d]
        targets = super().get_targets(on_cpu)
        return tuple([t.to(device, non_blocking=True) for t in per_task] for per_task in targets)

    def loss_by_feat(self, preds_dicts: Tuple[List[dict]],
                     batch_gt_instances_3d: List[InstanceData], *args,
                     **kwargs) -> Dict[str, Tensor]:
        """Gaussian focal loss on the heatmaps and (split) L1 on the boxes.

        Args:
            preds_dicts (tuple[list[dict]]): ``self.forward`` output: per
                task a one-element list holding the head dict.
            batch_gt_instances_3d (list[InstanceData]): ``bboxes_3d``
                (``LiDARInstance3DBoxes`` in the BEV frame) and
                ``labels_3d``.

        Returns:
            dict[str, Tensor]: ``task{t}.loss_heatmap`` and either
            ``task{t}.loss_{xy,z,whl,yaw,vel}`` (``task_specific``) or
            ``task{t}.loss_bbox``.
        """
        heatmaps, anno_boxes, inds, masks = self.get_targets(
            batch_gt_instances_3d)
        code_weights = self.train_cfg.get('code_weights', None)
        loss_dict = dict()
        for task_id, preds_dict in enumerate(preds_dicts):
            pred = preds_dict[0]
            # (mmdet3d's clip_sigmoid works in place; keep the outputs intact)
            heatmap = torch.clamp(pred['heatmap'].sigmoid(), 1e-4, 1 - 1e-4)
            num_pos = heatmaps[task_id].eq(1).float().sum().item()
            loss_dict[f'task{task_id}.loss_heatmap'] = self.loss_cls(
                heatmap, heatmaps[task_id], avg_factor=max(num_pos, 1))

            target_box = anno_boxes[task_id]
            anno_box = torch.cat((pred['reg'], pred['height'], pred['dim'],
                                  pred['rot'], pred['vel']),
                                 dim=1)
            ind = inds[task_id]
            num = masks[task_id].float().sum()
            box = anno_box.permute(0, 2, 3, 1).contiguous()
            box = box.view(box.size(0), -1, box.size(3))
            box = self._gather_feat(box, ind)
            mask = masks[task_id].unsqueeze(2).expand_as(target_box).float()
            mask = mask * (~torch.isnan(target_box)).float()
            if code_weights is not None:
                bbox_weights = mask * mask.new_tensor(code_weights)
            else:
                bbox_weights = mask
            if self.task_specific:
                for name, lo, hi in _REG_GROUPS:
                    loss_dict[f'task{task_id}.loss_{name}'] = self.loss_bbox(
                        box[..., lo:hi],
                        target_box[..., lo:hi],
                        bbox_weights[..., lo:hi],
                        avg_factor=(num + 1e-4))
            else:
                loss_dict[f'task{task_id}.loss_bbox'] = self.loss_bbox(
                    box, target_box, bbox_weights, avg_factor=(num + 1e-4))
        return loss_dict

    # ------------------------------------------------------------ inference
    def predict_by_feat(self, preds_dicts: Tuple[List[dict]],
                        batch_input_metas: List[dict], *args,
                        **kwargs) -> List[InstanceData]:
        """Decode the heatmaps and run (Scale-)NMS per task.

        Returns:
            list[InstanceData]: per sample ``bboxes_3d`` (box type of the
            metainfo, 9-dim with bottom-centre z), ``scores_3d``,
            ``labels_3d`` (global class index over all tasks).
        """
        rets = []
        for task_id, preds_dict in enumerate(preds_dicts):
            pred = preds_dict[0]
            batch_heatmap = pred['heatmap'].sigmoid()
            batch_dim = torch.exp(pred['dim']) if self.norm_bbox \
                else pred['dim']
            temp = self.bbox_coder.decode(
                batch_heatmap,
                pred['rot'][:, 0:1],
                pred['rot'][:, 1:2],
                pred['height'],
                batch_dim,
                pred.get('vel', None),
                reg=pred['reg'],
                task_id=task_id)
            nms_type = _per_task(self.test_cfg.get('nms_type', 'rotate'),
                                 task_id)
            assert nms_type in ('rotate', 'circle'), nms_type
            ret_task = []
            for i, dets in enumerate(temp):
                keep = self._nms_single(dets['bboxes'], dets['scores'],
                                        dets['labels'], task_id, nms_type,
                                        batch_input_metas[i])
                boxes = dets['bboxes'][keep]
                scores = dets['scores'][keep]
                labels = dets['labels'][keep].long()
                post_range = self.test_cfg.get('post_center_limit_range',
                                               None)
                if post_range is not None and len(post_range) > 0:
                    post_range = boxes.new_tensor(post_range)
                    m = (boxes[:, :3] >= post_range[:3]).all(1) & (
                        boxes[:, :3] <= post_range[3:]).all(1)
                    boxes, scores, labels = boxes[m], scores[m], labels[m]
                ret_task.append(
                    dict(bboxes=boxes, scores=scores, labels=labels))
            rets.append(ret_task)

        ret_list = []
        for i in range(len(rets[0])):
            bboxes = torch.cat([ret[i]['bboxes'] for ret in rets])
            bboxes = bboxes.clone()
            bboxes[:, 2] = bboxes[:, 2] - bboxes[:, 5] * 0.5  # gravity->bottom
            scores = torch.cat([ret[i]['scores'] for ret in rets])
            offset, labels = 0, []
            for j, num_class in enumerate(self.num_classes):
                labels.append(rets[j][i]['labels'] + offset)
                offset += num_class
            box_type = batch_input_metas[i].get('box_type_3d',
                                                LiDARInstance3DBoxes)
            inst = InstanceData()
            inst.bboxes_3d = box_type(bboxes, box_dim=bboxes.shape[-1])
            inst.scores_3d = scores
            inst.labels_3d = torch.cat(labels).int()
            ret_list.append(inst)
        return ret_list

    def rescale_factors(self, labels: Tensor, task_id: int) -> Tensor:
        """Scale-NMS size factor of each box (1 where not configured)."""
        factor_cfg = self.test_cfg.get('nms_rescale_factor', None)
        factors = labels.new_ones(labels.shape, dtype=torch.float32)
        if factor_cfg is None:
            return factors
        factor = factor_cfg if isinstance(factor_cfg, Number) \
            else factor_cfg[task_id]
        if isinstance(factor, Number):
            return factors * float(factor)
        table = torch.tensor([float(f) for f in factor],
                             device=labels.device)
        return table[labels.long()]

    def _nms_single(self, boxes: Tensor, scores: Tensor, labels: Tensor,
                    task_id: int, nms_type: str,
                    input_meta: Optional[dict] = None) -> Tensor:
        """Indices of the boxes kept by (Scale-)NMS, best score first.

        Args:
            boxes (Tensor): ``(M, 9)`` decoded boxes (gravity-centre z).
            scores (Tensor): ``(M,)``.
            labels (Tensor): ``(M,)`` class index within the task.
            task_id (int): Task index (selects thresholds and factors).
            nms_type (str): ``'rotate'`` or ``'circle'``.
            input_meta (dict, optional): For ``box_type_3d``.
        """
        device = boxes.device
        thr = self.test_cfg.get('score_threshold', 0.0) or 0.0
        if thr > 0:
            valid = torch.nonzero(scores >= thr, as_tuple=False).view(-1)
        else:
            valid = torch.arange(scores.numel(), device=device)
        if valid.numel() == 0:
            return valid
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        if nms_type == 'circle':
            centers = torch.cat([boxes[:, :2], scores.view(-1, 1)], dim=1)
            keep = circle_nms(
                centers.detach().cpu().numpy(),
                _per_task(self.test_cfg['min_radius'], task_id),
                post_max_size=self.test_cfg['post_max_size'])
            keep = torch.as_tensor(keep, dtype=torch.long, device=device)
            return valid[keep]
        # Scale-NMS: rescale box sizes per class for the IoU computation only
        scaled = boxes.detach().clone()
        scaled[:, 3:6] = scaled[:, 3:6] * self.rescale_factors(
            labels, task_id).to(scaled).unsqueeze(1)
        box_type = (input_meta or {}).get('box_type_3d', LiDARInstance3DBoxes)
        bev = xywhr2xyxyr(box_type(scaled, box_dim=scaled.shape[-1]).bev)
        keep = nms_bev(
            bev,
            scores.detach(),
            thresh=float(_per_task(self.test_cfg['nms_thr'], task_id)),
            pre_max_size=self.test_cfg.get('pre_max_size', None),
            post_max_size=self.test_cfg.get('post_max_size', None))
        return valid[keep]
