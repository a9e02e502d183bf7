"""``SparseBEVHead``: query boxes and features, query denoising, losses, decoding."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.utils import multi_apply
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import LiDARInstance3DBoxes
from ..detr3d.util import normalize_bbox
from .bbox_coding import encode_bbox


@MODELS.register_module()
class SparseBEVHead(BaseModule):
    """SparseBEV's head (upstream keys ``code_weights``, ``init_query_bbox``, ``label_enc``,
    ``transformer``).

    Queries: ``init_query_bbox`` (Q, 10) codes (a sqrt(Q) x sqrt(Q) grid in normalised xy,
    z = 0, log z_size = 1.5, zero velocity), features ``label_enc.weight[num_classes]`` plus
    an indicator 0 (DAB-DETR style). In training with ``query_denoising``, ``dn_groups``
    noisy copies of the GT boxes (centre noise up to ``dn_bbox_noise`` half-sizes, labels
    flipped with probability ``dn_label_noise``, indicator 1) go in front, blocked from the
    matching queries and from each other by the attention mask, and get their own losses
    (``loss_cls_dn``/``loss_bbox_dn``, ``d{i}.`` for the earlier stages).

    Outputs (``forward``): ``all_cls_scores (S, B, Q, K)`` logits and ``all_bbox_preds
    (S, B, Q, 10)`` in the DETR3D code ``(cx, cy, log w, log l, cz, log h, sin, cos, vx, vy)``
    with centres in metres (see :mod:`ptqat.models.detr3d.util`).

    Args:
        transformer: ``SparseBEVTransformer`` config. bbox_coder: ``NMSFreeCoder`` config.
        num_query: Q (a square). num_classes: K. in_channels: C.
        positional_encoding: accepted for config compatibility (upstream builds an unused,
            parameter-free ``SinePositionalEncoding``); must be None or that type.
        loss_cls, loss_bbox: mmdet losses (focal, L1). loss_iou: must have weight 0.
        train_cfg: ``dict(assigner=...)``.
    """

    def __init__(self, transformer: dict, bbox_coder: dict, num_query: int = 900,
                 num_classes: int = 10, in_channels: int = 256, code_size: int = 10,
                 code_weights: Optional[Sequence[float]] = None, query_denoising: bool = True,
                 query_denoising_groups: int = 10, dn_bbox_noise: float = 0.5,
                 dn_label_noise: float = 0.5, sync_cls_avg_factor: bool = True,
                 positional_encoding: Optional[dict] = None, loss_cls: Optional[dict] = None,
                 loss_bbox: Optional[dict] = None, loss_iou: Optional[dict] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        if positional_encoding is not None and \
                positional_encoding.get('type') not in ('SinePositionalEncoding',
                                                        'mmdet.SinePositionalEncoding'):
            raise ValueError(f'SparseBEVHead: positional_encoding {positional_encoding} is not '
                             'used (allowed: None or SinePositionalEncoding, as upstream)')
        if loss_iou is not None and loss_iou.get('loss_weight', 0.0) != 0.0:
            raise ValueError(f'SparseBEVHead: loss_iou weight {loss_iou["loss_weight"]} is not '
                             'supported (allowed: 0, as upstream)')
        grid = int(round(math.sqrt(num_query)))
        if grid * grid != num_query:
            raise ValueError(f'SparseBEVHead: num_query {num_query} must be a square number')
        self.num_query, self.num_classes, self.embed_dims = num_query, num_classes, in_channels
        self.cls_out_channels = num_classes
        self.code_size = code_size
        self.code_weights = nn.Parameter(
            torch.tensor(code_weights or [1.0] * code_size, dtype=torch.float32),
            requires_grad=False)
        self.dn_enabled, self.dn_groups = query_denoising, query_denoising_groups
        self.dn_bbox_noise, self.dn_label_noise = dn_bbox_noise, dn_label_noise
        self.sync_cls_avg_factor = sync_cls_avg_factor
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.pc_range = self.bbox_coder.pc_range
        self.loss_cls = MODELS.build(loss_cls or dict(
            type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0))
        self.loss_bbox = MODELS.build(loss_bbox or dict(type='mmdet.L1Loss', loss_weight=0.25))
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.assigner = TASK_UTILS.build(train_cfg['assigner']) if train_cfg else None
        self.transformer = MODELS.build(transformer)
        self.init_query_bbox = nn.Embedding(num_query, 10)
        self.label_enc = nn.Embedding(num_classes + 1, in_channels - 1)
        self.reset_query_bbox()

    def reset_query_bbox(self) -> None:
        """Upstream's initial boxes: a grid in normalised xy, z 0, log z_size 1.5, v 0."""
        g = int(round(math.sqrt(self.num_query)))
        with torch.no_grad():
            w = self.init_query_bbox.weight
            idx = torch.arange(g, dtype=torch.float32)
            xx, yy = torch.meshgrid(idx, idx, indexing='ij')
            w[:, 0:2] = ((torch.stack([xx, yy], -1) + 0.5) / g).reshape(-1, 2)
            w[:, 2:3] = 0.0
            w[:, 5:6] = 1.5
            w[:, 8:10] = 0.0

    def init_weights(self) -> None:
        self.transformer.init_weights()
        self.reset_query_bbox()

    # ------------------------------------------------------------------ queries
    def matching_queries(self, batch_size: int) -> Tuple[Tensor, Tensor]:
        """``(B, Q, 10)`` codes and ``(B, Q, C)`` features of the matching queries."""
        box = self.init_query_bbox.weight
        feat = torch.cat([self.label_enc.weight[self.num_classes],
                          box.new_zeros(1)]).expand(self.num_query, -1)
        return box[None].expand(batch_size, -1, -1), feat[None].expand(batch_size, -1, -1)

    def dn_queries(self, gts: List[Tuple[Tensor, Tensor]]) -> Optional[dict]:
        """Noisy GT queries of every sample (training).

        Args:
            gts: per sample ``((G, 9) boxes (gravity centre, metres), (G,) labels)``.

        Returns:
            None without GT, else ``bbox (B, D, 10)``, ``feat (B, D, C)``, ``pad`` = D
            (= groups x the largest GT count), per group slot the target ``labels (B, D)``,
            ``boxes (B, D, 9)`` and ``valid (B, D)``.
        """
        num = [int(l.numel()) for _, l in gts]
        single = max(num) if num else 0
        if single == 0:
            return None
        B, D, dev = len(gts), single * self.dn_groups, self.init_query_bbox.weight.device
        bbox = torch.zeros(B, D, 10, device=dev)
        feat = torch.zeros(B, D, self.embed_dims, device=dev)
        labels = torch.full((B, D), self.num_classes, dtype=torch.long, device=dev)
        boxes = torch.zeros(B, D, 9, device=dev)
        valid = torch.zeros(B, D, dtype=torch.bool, device=dev)
        for b, (gb, gl) in enumerate(gts):
            n = gl.numel()
            if n == 0:
                continue
            kb = gb.repeat(self.dn_groups, 1)
            kl = gl.repeat(self.dn_groups)
            noisy = kb.clone()
            if self.dn_bbox_noise > 0:
                r = torch.rand_like(noisy[:, 0:3]) * 2 - 1
                noisy[:, 0:3] += r * noisy[:, 3:6] / 2 * self.dn_bbox_noise
            code = encode_bbox(noisy, self.pc_range)
            code[:, 0:3] = code[:, 0:3].clamp(0.0, 1.0)
            nl = kl.clone()
            if self.dn_label_noise > 0:
                flip = torch.rand(nl.shape, device=dev) < self.dn_label_noise
                nl[flip] = torch.randint_like(nl[flip], 0, self.num_classes)
            f = torch.cat([self.label_enc(nl), torch.ones_like(nl[:, None], dtype=torch.float)],
                          dim=1)
            slots = (torch.arange(n, device=dev)[None] +
                     single * torch.arange(self.dn_groups, device=dev)[:, None]).reshape(-1)
            bbox[b, slots] = code
            feat[b, slots] = f
            labels[b, slots] = kl
            boxes[b, slots] = kb
            valid[b, slots] = True
        return dict(bbox=bbox, feat=feat, pad=D, single=single, labels=labels, boxes=boxes,
                    valid=valid)

    def dn_attn_mask(self, pad: int, single: int, device) -> Tensor:
        """``(D + Q, D + Q)`` bool, True = blocked: matching queries do not see the DN
        queries, and each DN group sees only itself and the matching queries."""
        total = pad + self.num_query
        mask = torch.zeros(total, total, dtype=torch.bool, device=device)
        mask[pad:, :pad] = True
        for i in range(self.dn_groups):
            s, e = single * i, single * (i + 1)
            mask[s:e, :s] = True
            mask[s:e, e:pad] = True
        return mask

    # ------------------------------------------------------------------ forward
    def forward(self, mlvl_feats: List[Tensor], lidar2img: Tensor, time_diff: Tensor,
                image_hw: Tuple[int, int],
                gts: Optional[List[Tuple[Tensor, Tensor]]] = None) -> dict:
        """
        Args:
            mlvl_feats: per level ``(B, T·N, C, H_l, W_l)``.
            lidar2img: ``(B, T·N, 4, 4)``; time_diff: ``(B, T)`` seconds; image_hw ``(H, W)``.
            gts: per sample GT (see :meth:`dn_queries`); denoising queries are added when
                given in training with ``query_denoising``.

        Returns:
            dict ``all_cls_scores``, ``all_bbox_preds`` (matching queries) and ``dn`` (None
            or the DN outputs and targets).
        """
        B = mlvl_feats[0].shape[0]
        box, feat = self.matching_queries(B)
        dn = self.dn_queries(gts) if (self.training and self.dn_enabled and gts) else None
        attn_mask = None
        if dn is not None:
            box = torch.cat([dn['bbox'], box], dim=1)
            feat = torch.cat([dn['feat'], feat], dim=1)
            attn_mask = self.dn_attn_mask(dn['pad'], dn['single'], box.device)
        cls, bbox = self.transformer(box, feat, mlvl_feats, attn_mask, lidar2img, time_diff,
                                     image_hw)
        bbox = self.to_detr3d_code(bbox)
        if dn is not None:
            p = dn['pad']
            dn.update(cls=cls[:, :, :p], bbox_pred=bbox[:, :, :p])
            cls, bbox = cls[:, :, p:], bbox[:, :, p:]
        return dict(all_cls_scores=cls, all_bbox_preds=bbox, dn=dn)

    def to_detr3d_code(self, codes: Tensor) -> Tensor:
        """Query codes (normalised xyz) -> ``(cx, cy, w, l, cz, h, sin, cos, vx, vy)`` in
        metres / log-metres."""
        lo = codes.new_tensor(self.pc_range[:3])
        hi = codes.new_tensor(self.pc_range[3:6])
        xyz = codes[..., 0:3] * (hi - lo) + lo
        return torch.cat([xyz[..., 0:2], codes[..., 3:5], xyz[..., 2:3], codes[..., 5:]], -1)

    # ------------------------------------------------------------------ losses
    def _target_single(self, cls_score: Tensor, bbox_pred: Tensor, gt_labels: Tensor,
                       gt_bboxes: Tensor) -> tuple:
        n = bbox_pred.size(0)
        assign = self.assigner.assign(bbox_pred, cls_score, gt_bboxes, gt_labels)
        pos = torch.nonzero(assign.gt_inds > 0, as_tuple=False).squeeze(-1)
        pos_gt = assign.gt_inds[pos] - 1
        labels = gt_bboxes.new_full((n,), self.num_classes, dtype=torch.long)
        labels[pos] = gt_labels[pos_gt]
        targets = bbox_pred.new_zeros((n, gt_bboxes.size(-1)))
        weights = torch.zeros_like(bbox_pred)
        weights[pos] = 1.0
        targets[pos] = gt_bboxes[pos_gt]
        return labels, targets, weights, pos.numel()

    def _cls_box_losses(self, cls: Tensor, bbox: Tensor, labels: Tensor, targets: Tensor,
                        weights: Tensor, cls_avg: float, num_pos: float) -> Tuple[Tensor, Tensor]:
        """Focal loss on ``(M, K)`` logits, L1 on the ``(M, 10)`` codes vs ``(M, 9)`` boxes."""
        loss_cls = self.loss_cls(cls, labels, torch.ones_like(labels, dtype=cls.dtype),
                                 avg_factor=cls_avg)
        norm = normalize_bbox(targets, self.pc_range)
        finite = torch.isfinite(norm).all(dim=-1)
        w = weights * self.code_weights
        loss_bbox = self.loss_bbox(bbox[finite, :10], norm[finite, :10], w[finite, :10],
                                   avg_factor=num_pos)
        return torch.nan_to_num(loss_cls), torch.nan_to_num(loss_bbox)

    def loss_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                    gts: List[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
        """Hungarian-matched losses of one stage: ``cls (B, Q, K)``, ``bbox (B, Q, 10)``."""
        labels, targets, weights, npos = multi_apply(
            self._target_single, list(cls_scores), list(bbox_preds), [l for _, l in gts],
            [b for b, _ in gts])
        cls_avg = cls_scores.new_tensor([float(sum(npos))])
        if self.sync_cls_avg_factor:
            cls_avg = reduce_mean(cls_avg)
        num_pos = torch.clamp(reduce_mean(cls_scores.new_tensor([float(sum(npos))])), min=1)
        return self._cls_box_losses(
            cls_scores.reshape(-1, self.cls_out_channels), bbox_preds.reshape(-1, 10),
            torch.cat(labels), torch.cat(targets), torch.cat(weights),
            max(float(cls_avg), 1.0), float(num_pos))

    def dn_loss_single(self, cls: Tensor, bbox: Tensor, dn: dict) -> Tuple[Tensor, Tensor]:
        """Losses of the DN queries of one stage against their own GT (no matching)."""
        v = dn['valid']
        num = torch.clamp(reduce_mean(cls.new_tensor([float(v.sum())])), min=1.0).item()
        return self._cls_box_losses(cls[v], bbox[v], dn['labels'][v], dn['boxes'][v],
                                    torch.ones_like(bbox[v]), num, num)

    @staticmethod
    def gt_tensors(gt_instances_3d: List[InstanceData], device) -> List[Tuple[Tensor, Tensor]]:
        """Per sample ``((G, 9) gravity-centre boxes, (G,) labels)``."""
        out = []
        for gt in gt_instances_3d:
            b = gt.bboxes_3d
            out.append((torch.cat((b.gravity_center, b.tensor[:, 3:]), 1).to(device),
                        gt.labels_3d.to(device).long()))
        return out

    def loss_by_feat(self, preds: dict, gts: List[Tuple[Tensor, Tensor]]) -> Dict[str, Tensor]:
        """``loss_cls``/``loss_bbox`` (last stage), ``d{i}.*`` (earlier stages) and, with
        denoising, ``loss_cls_dn``/``loss_bbox_dn`` and ``d{i}.loss_*_dn``."""
        all_cls, all_bbox = preds['all_cls_scores'], preds['all_bbox_preds']
        S = len(all_cls)
        lc, lb = multi_apply(self.loss_single, list(all_cls), list(all_bbox), [gts] * S)
        out = {}
        dn = preds.get('dn')
        if dn is not None:
            dc, db = multi_apply(self.dn_loss_single, list(dn['cls']), list(dn['bbox_pred']),
                                 [dn] * S)
            out['loss_cls_dn'], out['loss_bbox_dn'] = dc[-1], db[-1]
            for i in range(S - 1):
                out[f'd{i}.loss_cls_dn'], out[f'd{i}.loss_bbox_dn'] = dc[i], db[i]
        out['loss_cls'], out['loss_bbox'] = lc[-1], lb[-1]
        for i in range(S - 1):
            out[f'd{i}.loss_cls'], out[f'd{i}.loss_bbox'] = lc[i], lb[i]
        return out

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, preds: dict) -> List[InstanceData]:
        """Per sample ``bboxes_3d`` (LiDARInstance3DBoxes, bottom centre, 9 dof),
        ``scores_3d``, ``labels_3d`` from the last stage."""
        results = []
        for dec in self.bbox_coder.decode(preds):
            boxes = dec['bboxes'].clone()
            boxes[:, 2] = boxes[:, 2] - boxes[:, 5] * 0.5
            res = InstanceData()
            res.bboxes_3d = LiDARInstance3DBoxes(boxes, box_dim=boxes.shape[-1])
            res.scores_3d = dec['scores']
            res.labels_3d = dec['labels']
            results.append(res)
        return results
