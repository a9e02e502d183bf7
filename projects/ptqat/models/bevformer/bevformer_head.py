"""``BEVFormerHead``: DETR-style 3D detection head on the BEVFormer transformer."""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.models.utils import multi_apply
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import LiDARInstance3DBoxes
from ..detr3d.util import normalize_bbox


@MODELS.register_module()
class BEVFormerHead(BaseModule):
    """BEVFormer's head (upstream keys: ``code_weights``, ``positional_encoding``,
    ``bev_embedding``, ``query_embedding``, ``transformer``, ``cls_branches``,
    ``reg_branches``).

    Box code (10): ``(cx, cy, log x_size, log y_size, cz, log z_size, sin, cos,
    vx, vy)`` with cx, cy, cz decoded to metres (mmdet3d 1.x box convention;
    see :mod:`ptqat.models.detr3d.util`).

    Args:
        transformer (dict): ``PerceptionTransformer`` config; with ``decoder=None`` the head
            only encodes the BEV (no object queries, class / box branches: the dense-task
            models, as upstream's BEVFormer-occ).
        bbox_coder (dict): ``NMSFreeCoder`` config (gives ``pc_range``).
        positional_encoding (dict): ``mmdet.LearnedPositionalEncoding`` config.
        bev_h, bev_w (int): BEV grid.
        num_query (int): Object queries.
        num_classes (int): Sigmoid classes.
        in_channels (int): Embedding size C.
        with_box_refine (bool): Independent, refining branches per decoder
            layer (True upstream); False shares one branch.
        as_two_stage (bool): Must be False.
        sync_cls_avg_factor (bool): Average the class normaliser over ranks.
        code_weights (sequence[float]): L1 weights of the 10 code entries.
        loss_cls, loss_bbox, loss_iou (dict): mmdet losses (IoU weight must be 0).
        train_cfg (dict): ``assigner`` (``HungarianAssigner3D``).
        test_cfg: Unused.
    """

    def __init__(self, transformer: dict, bbox_coder: dict, positional_encoding: dict,
                 bev_h: int = 30, bev_w: int = 30, num_query: int = 900, num_classes: int = 10,
                 in_channels: int = 256, num_reg_fcs: int = 2, with_box_refine: bool = True,
                 as_two_stage: bool = False, sync_cls_avg_factor: bool = True,
                 code_size: int = 10, code_weights: Optional[Sequence[float]] = None,
                 loss_cls: Optional[dict] = None, loss_bbox: Optional[dict] = None,
                 loss_iou: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None, **kwargs):
        super().__init__(init_cfg)
        if kwargs:
            raise TypeError(f'BEVFormerHead: unexpected arguments {sorted(kwargs)}')
        if as_two_stage:
            raise ValueError('BEVFormerHead: as_two_stage=True is not supported (allowed: False)')
        if loss_iou is not None and loss_iou.get('loss_weight', 0.0) != 0.0:
            raise ValueError(f'BEVFormerHead: loss_iou weight {loss_iou["loss_weight"]} is not '
                             'supported (allowed: 0, as upstream)')
        self.bev_h, self.bev_w = bev_h, bev_w
        self.num_query, self.num_classes = num_query, num_classes
        self.embed_dims = in_channels
        self.num_reg_fcs = num_reg_fcs
        self.with_box_refine, self.as_two_stage = with_box_refine, as_two_stage
        self.sync_cls_avg_factor = sync_cls_avg_factor
        self.code_size = code_size
        code_weights = code_weights or [1.0] * 8 + [0.2, 0.2]
        self.code_weights = nn.Parameter(torch.tensor(code_weights, dtype=torch.float32),
                                         requires_grad=False)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.pc_range = self.bbox_coder.pc_range
        self.real_w = self.pc_range[3] - self.pc_range[0]
        self.real_h = self.pc_range[4] - self.pc_range[1]
        loss_cls = loss_cls or dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0,
                                    alpha=0.25, loss_weight=2.0)
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError('BEVFormerHead: loss_cls must use_sigmoid=True (softmax is not '
                             'supported)')
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='mmdet.L1Loss', loss_weight=0.25))
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.assigner = TASK_UTILS.build(train_cfg['assigner']) if train_cfg else None
        self.cls_out_channels = num_classes
        self.positional_encoding = MODELS.build(positional_encoding)
        self.transformer = MODELS.build(transformer)
        self._init_layers()

    def _init_layers(self) -> None:
        if self.transformer.decoder is None:  # BEV encoder only
            self.bev_embedding = nn.Embedding(self.bev_h * self.bev_w, self.embed_dims)
            return
        cls_branch = []
        for _ in range(self.num_reg_fcs):
            cls_branch += [nn.Linear(self.embed_dims, self.embed_dims),
                           nn.LayerNorm(self.embed_dims), nn.ReLU(inplace=True)]
        cls_branch.append(nn.Linear(self.embed_dims, self.cls_out_channels))
        fc_cls = nn.Sequential(*cls_branch)
        reg_branch = []
        for _ in range(self.num_reg_fcs):
            reg_branch += [nn.Linear(self.embed_dims, self.embed_dims), nn.ReLU()]
        reg_branch.append(nn.Linear(self.embed_dims, self.code_size))
        reg = nn.Sequential(*reg_branch)
        num_pred = self.transformer.decoder.num_layers
        if self.with_box_refine:
            self.cls_branches = nn.ModuleList([copy.deepcopy(fc_cls) for _ in range(num_pred)])
            self.reg_branches = nn.ModuleList([copy.deepcopy(reg) for _ in range(num_pred)])
        else:
            self.cls_branches = nn.ModuleList([fc_cls for _ in range(num_pred)])
            self.reg_branches = nn.ModuleList([reg for _ in range(num_pred)])
        self.bev_embedding = nn.Embedding(self.bev_h * self.bev_w, self.embed_dims)
        self.query_embedding = nn.Embedding(self.num_query, self.embed_dims * 2)

    @property
    def with_detection(self) -> bool:
        """False when the transformer has no decoder (BEV encoder only)."""
        return self.transformer.decoder is not None

    def init_weights(self) -> None:
        """Upstream initialisation: transformer's, then the focal-loss prior bias."""
        self.transformer.init_weights()
        if not self.with_detection:
            return
        bias = bias_init_with_prob(0.01)
        for m in self.cls_branches:
            nn.init.constant_(m[-1].bias, bias)

    @property
    def grid_length(self) -> tuple:
        """``(cell_y, cell_x)`` metres per BEV cell."""
        return (self.real_h / self.bev_h, self.real_w / self.bev_w)

    def bev_inputs(self, mlvl_feats: List[Tensor]) -> tuple:
        """BEV queries ``(HW, C)`` and positional encoding ``(B, C, H, W)``."""
        bs = mlvl_feats[0].shape[0]
        dtype = mlvl_feats[0].dtype
        bev_queries = self.bev_embedding.weight.to(dtype)
        mask = bev_queries.new_zeros((bs, self.bev_h, self.bev_w))
        bev_pos = self.positional_encoding(mask).to(dtype)
        return bev_queries, bev_pos

    def forward(self, mlvl_feats: List[Tensor], img_metas: List[dict],
                prev_bev: Optional[Tensor] = None, only_bev: bool = False):
        """Run the transformer and the branches.

        Args:
            mlvl_feats: per level ``(B, N, C, H_l, W_l)``.
            img_metas: per sample dicts (``can_bus`` with deltas, ``lidar2img``,
                ``img_shape``).
            prev_bev: ``(B, HW, C)`` or None.
            only_bev: Return only the BEV ``(B, HW, C)``.

        Returns:
            dict ``bev_embed (B, HW, C)``, ``all_cls_scores (L, B, Q,
            num_classes)`` logits, ``all_bbox_preds (L, B, Q, 10)``.
        """
        bev_queries, bev_pos = self.bev_inputs(mlvl_feats)
        if only_bev:
            return self.transformer.get_bev_features(mlvl_feats, bev_queries, self.bev_h,
                                                     self.bev_w, self.grid_length, bev_pos,
                                                     img_metas, prev_bev)
        if not self.with_detection:
            raise ValueError('BEVFormerHead without a decoder encodes the BEV only: call it '
                             'with only_bev=True')
        query_embeds = self.query_embedding.weight.to(mlvl_feats[0].dtype)
        bev_embed, hs, init_ref, inter_refs = self.transformer(
            mlvl_feats, bev_queries, query_embeds, self.bev_h, self.bev_w, self.grid_length,
            bev_pos, img_metas, reg_branches=self.reg_branches if self.with_box_refine else None,
            prev_bev=prev_bev)
        hs = hs.permute(0, 2, 1, 3)  # (L, B, Q, C)
        pc = self.pc_range
        classes, coords = [], []
        for lvl in range(hs.shape[0]):
            ref = inverse_sigmoid(init_ref if lvl == 0 else inter_refs[lvl - 1])
            classes.append(self.cls_branches[lvl](hs[lvl]))
            tmp = self.reg_branches[lvl](hs[lvl])
            xy = (tmp[..., 0:2] + ref[..., 0:2]).sigmoid()
            z = (tmp[..., 4:5] + ref[..., 2:3]).sigmoid()
            x = xy[..., 0:1] * (pc[3] - pc[0]) + pc[0]
            y = xy[..., 1:2] * (pc[4] - pc[1]) + pc[1]
            z = z * (pc[5] - pc[2]) + pc[2]
            coords.append(torch.cat([x, y, tmp[..., 2:4], z, tmp[..., 5:]], -1))
        return dict(bev_embed=bev_embed, all_cls_scores=torch.stack(classes),
                    all_bbox_preds=torch.stack(coords))

    # ------------------------------------------------------------------ training
    def _target_single(self, cls_score: Tensor, bbox_pred: Tensor, gt_labels: Tensor,
                       gt_bboxes: Tensor) -> tuple:
        num_bboxes = bbox_pred.size(0)
        assign = self.assigner.assign(bbox_pred, cls_score, gt_bboxes, gt_labels)
        pos = torch.nonzero(assign.gt_inds > 0, as_tuple=False).squeeze(-1)
        neg = torch.nonzero(assign.gt_inds == 0, as_tuple=False).squeeze(-1)
        pos_gt = assign.gt_inds[pos] - 1
        labels = gt_bboxes.new_full((num_bboxes,), self.num_classes, dtype=torch.long)
        labels[pos] = gt_labels[pos_gt]
        label_weights = gt_bboxes.new_ones(num_bboxes)
        bbox_targets = torch.zeros_like(bbox_pred)[..., :gt_bboxes.size(-1)]
        bbox_weights = torch.zeros_like(bbox_pred)
        bbox_weights[pos] = 1.0
        bbox_targets[pos] = gt_bboxes[pos_gt]
        return labels, label_weights, bbox_targets, bbox_weights, pos, neg

    def loss_single(self, cls_scores: Tensor, bbox_preds: Tensor, gt_bboxes_list: List[Tensor],
                    gt_labels_list: List[Tensor]) -> tuple:
        """Focal + L1 loss of one decoder layer: ``cls (B, Q, K)``, ``bbox (B, Q, 10)``."""
        num_imgs = cls_scores.size(0)
        (labels, label_weights, bbox_targets, bbox_weights, pos, neg) = multi_apply(
            self._target_single, [cls_scores[i] for i in range(num_imgs)],
            [bbox_preds[i] for i in range(num_imgs)], gt_labels_list, gt_bboxes_list)
        num_pos = sum(p.numel() for p in pos)
        labels = torch.cat(labels)
        label_weights = torch.cat(label_weights)
        bbox_targets = torch.cat(bbox_targets)
        bbox_weights = torch.cat(bbox_weights)
        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        cls_avg = cls_scores.new_tensor([float(num_pos)])
        if self.sync_cls_avg_factor:
            cls_avg = reduce_mean(cls_avg)
        cls_avg = max(float(cls_avg), 1.0)
        loss_cls = self.loss_cls(cls_scores, labels, label_weights, avg_factor=cls_avg)
        num_pos_t = torch.clamp(reduce_mean(loss_cls.new_tensor([float(num_pos)])), min=1).item()
        bbox_preds = bbox_preds.reshape(-1, bbox_preds.size(-1))
        targets = normalize_bbox(bbox_targets, self.pc_range)
        finite = torch.isfinite(targets).all(dim=-1)
        bbox_weights = bbox_weights * self.code_weights
        loss_bbox = self.loss_bbox(bbox_preds[finite, :10], targets[finite, :10],
                                   bbox_weights[finite, :10], avg_factor=num_pos_t)
        return torch.nan_to_num(loss_cls), torch.nan_to_num(loss_bbox)

    @staticmethod
    def gt_tensors(gt_instances_3d: List[InstanceData], device) -> tuple:
        """Per sample ``(G, 9)`` gravity-centre boxes and ``(G,)`` labels."""
        boxes, labels = [], []
        for gt in gt_instances_3d:
            b = gt.bboxes_3d
            boxes.append(torch.cat((b.gravity_center, b.tensor[:, 3:]), dim=1).to(device))
            labels.append(gt.labels_3d.to(device))
        return boxes, labels

    def loss_by_feat(self, preds: dict, gt_instances_3d: List[InstanceData]) -> Dict[str, Tensor]:
        """Losses of every decoder layer: ``loss_cls``/``loss_bbox`` for the last,
        ``d{i}.loss_cls``/``d{i}.loss_bbox`` for the others."""
        all_cls, all_bbox = preds['all_cls_scores'], preds['all_bbox_preds']
        gt_boxes, gt_labels = self.gt_tensors(gt_instances_3d, all_cls.device)
        n = len(all_cls)
        losses_cls, losses_bbox = multi_apply(self.loss_single, list(all_cls), list(all_bbox),
                                              [gt_boxes] * n, [gt_labels] * n)
        out = dict(loss_cls=losses_cls[-1], loss_bbox=losses_bbox[-1])
        for i, (lc, lb) in enumerate(zip(losses_cls[:-1], losses_bbox[:-1])):
            out[f'd{i}.loss_cls'] = lc
            out[f'd{i}.loss_bbox'] = lb
        return out

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, preds: dict, img_metas: List[dict]) -> List[InstanceData]:
        """Decoded boxes per sample: ``bboxes_3d`` (LiDARInstance3DBoxes, bottom
        centre, 9 dof), ``scores_3d``, ``labels_3d``."""
        results = []
        for i, dec in enumerate(self.bbox_coder.decode(preds)):
            boxes = dec['bboxes'].clone()
            boxes[:, 2] = boxes[:, 2] - boxes[:, 5] * 0.5
            res = InstanceData()
            res.bboxes_3d = LiDARInstance3DBoxes(boxes, box_dim=boxes.shape[-1])
            res.scores_3d = dec['scores']
            res.labels_3d = dec['labels']
            results.append(res)
        return results
