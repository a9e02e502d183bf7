"""``BEVFormer`` detector: image encoder, temporal BEV encoder, DETR head."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mmdet3d.models.detectors import MVXTwoStageDetector
from mmdet3d.registry import MODELS
from ..detr3d.multiview import build_grid_mask, multiview_features
from mmdet3d.structures import Det3DDataSample

SampleList = List[Det3DDataSample]


def can_bus_delta(can_bus, prev_pose: Optional[Tuple[np.ndarray, float]]):
    """The 18 CAN-bus values with the position ``[:3]`` (m) and yaw ``[-1]`` (deg) replaced by their
    change since ``prev_pose = (position, yaw)`` (zero when None: a scene start). Returns
    ``(new can_bus (18,) float64, this frame's (position, yaw))``."""
    can_bus = np.array(can_bus, dtype=np.float64)
    pose = (can_bus[:3].copy(), float(can_bus[-1]))
    if prev_pose is None:
        can_bus[:3] = 0
        can_bus[-1] = 0
    else:
        can_bus[:3] -= prev_pose[0]
        can_bus[-1] -= prev_pose[1]
    return can_bus, pose


def can_bus_deltas(metas: List[dict]) -> List[dict]:
    """Apply BEVFormer's CAN-bus deltas along one sample's frame sequence.

    Args:
        metas: the frames of one sample, oldest first, each with ``can_bus``
            (18: ``[0:3]`` ego position in metres, ``[-2]`` yaw in radians,
            ``[-1]`` yaw in degrees) and ``scene_token``.

    Returns:
        Copies with ``can_bus[:3]`` / ``can_bus[-1]`` replaced by the change
        since the previous frame (zero at a scene start) and
        ``prev_bev_exists`` set (False at a scene start).
    """
    out, prev_scene, prev_pose = [], None, None
    for meta in metas:
        m = dict(meta)
        m['prev_bev_exists'] = m['scene_token'] == prev_scene
        m['can_bus'], prev_pose = can_bus_delta(m['can_bus'], prev_pose if m['prev_bev_exists'] else None)
        prev_scene = m['scene_token']
        out.append(m)
    return out


@MODELS.register_module()
class BEVFormer(MVXTwoStageDetector):
    """BEVFormer (keys as upstream: ``img_backbone``, ``img_neck``, ``pts_bbox_head``).

    Inputs (after the data preprocessor): ``inputs['imgs']`` float
    ``(B, N, 3, H, W)`` or, with a training queue, ``(B, T, N, 3, H, W)``
    (oldest frame first, the last is the current one). Each data sample's
    metainfo has ``lidar2img (N, 4, 4)``, ``img_shape``/``pad_shape`` (the
    padded input ``(H, W)``), ``can_bus`` (18, raw), ``scene_token`` and,
    at test time in ``video_test_mode``, ``frame_idx`` (0 at a scene start: the cache
    resets, also when the same scene is run again by the next validation);
    with a queue, ``queue_metas``: the metas of the T-1 history frames,
    oldest first.

    Training: the history BEVs are computed in eval mode without gradient
    (upstream's ``obtain_history_bev``); CAN-bus deltas along the queue by
    :func:`can_bus_deltas`. Test: batch 1, frames in scene order; the
    previous BEV is cached while the scene continues and reset at a new one.

    Args:
        use_grid_mask (bool): GridMask on the images during training.
        video_test_mode (bool): Use the cached previous BEV at test time.
        grid_mask (dict, optional): ``GridMask`` arguments.
    """

    def __init__(self, use_grid_mask: bool = False, video_test_mode: bool = False,
                 grid_mask: Optional[dict] = None, img_backbone: Optional[dict] = None,
                 img_neck: Optional[dict] = None, pts_bbox_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        super().__init__(img_backbone=img_backbone, img_neck=img_neck,
                         pts_bbox_head=pts_bbox_head, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.grid_mask = build_grid_mask(grid_mask)
        self.use_grid_mask = use_grid_mask
        self.video_test_mode = video_test_mode
        self.reset_test_cache()

    # ------------------------------------------------------------------ features
    def extract_img_feat(self, img: Tensor) -> List[Tensor]:
        """``(B, N, 3, H, W)`` -> per FPN level ``(B, N, C, H_l, W_l)``."""
        return multiview_features(img, self.img_backbone, self.img_neck,
                                  self.grid_mask if self.use_grid_mask and self.training else None)

    def obtain_history_bev(self, imgs_queue: Tensor, metas_queue: List[List[dict]]) -> Tensor:
        """BEV of the last history frame, in eval mode and without gradient.

        Args:
            imgs_queue: ``(B, T', N, 3, H, W)`` history frames, oldest first.
            metas_queue: per sample the T' metas (deltas applied).

        Returns:
            ``(B, HW, C)`` or None if the last history frame had no previous BEV
            chain (never: the first history frame always starts fresh).
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                prev_bev = None
                B, T = imgs_queue.shape[:2]
                feats = self.extract_img_feat(imgs_queue.flatten(0, 1))
                feats = [f.view(B, T, *f.shape[1:]) for f in feats]
                for i in range(T):
                    metas = [m[i] for m in metas_queue]
                    if not metas[0]['prev_bev_exists']:
                        prev_bev = None
                    prev_bev = self.pts_bbox_head([f[:, i] for f in feats], metas, prev_bev,
                                                  only_bev=True)
        finally:
            self.train(was_training)
        return prev_bev

    @staticmethod
    def _metas(data_samples: SampleList) -> List[dict]:
        return [dict(s.metainfo) for s in data_samples]

    # ------------------------------------------------------------------ training
    def split_queue(self, inputs: dict, data_samples: SampleList):
        """Current images ``(B, N, 3, H, W)``, current metas (deltas applied),
        history images ``(B, T-1, N, 3, H, W)`` or None, history metas."""
        imgs = inputs['imgs']
        metas = self._metas(data_samples)
        if imgs.dim() == 5:
            return imgs, can_bus_deltas_each(metas), None, None
        if imgs.dim() != 6:
            raise ValueError(f'BEVFormer: inputs["imgs"] must be (B, N, 3, H, W) or (B, T, N, 3, '
                             f'H, W), got shape {tuple(imgs.shape)}')
        T = imgs.shape[1]
        seqs = []
        for m in metas:
            hist = m.get('queue_metas')
            if hist is None or len(hist) != T - 1:
                raise ValueError(f'BEVFormer: a queue of {T} frames needs {T - 1} queue_metas '
                                 f'per sample, got {None if hist is None else len(hist)}')
            seqs.append(can_bus_deltas(list(hist) + [m]))
        cur = [s[-1] for s in seqs]
        return imgs[:, -1], cur, imgs[:, :-1], [s[:-1] for s in seqs]

    def current_frame(self, inputs: dict, data_samples: SampleList):
        """Training / tensor mode: the current images ``(B, N, 3, H, W)``, their metas
        (deltas applied) and the history BEV (None without a queue or at a scene start)."""
        img, metas, hist_imgs, hist_metas = self.split_queue(inputs, data_samples)
        prev_bev = None
        if hist_imgs is not None and hist_imgs.shape[1] > 0 and metas[0]['prev_bev_exists']:
            prev_bev = self.obtain_history_bev(hist_imgs, hist_metas)
        return img, metas, prev_bev

    def loss(self, inputs: dict, data_samples: SampleList, **kwargs) -> Dict[str, Tensor]:
        """Losses of the current frame given the history BEV."""
        img, metas, prev_bev = self.current_frame(inputs, data_samples)
        preds = self.pts_bbox_head(self.extract_img_feat(img), metas, prev_bev)
        gts = [s.gt_instances_3d for s in data_samples]
        return self.pts_bbox_head.loss_by_feat(preds, gts)

    # ------------------------------------------------------------------ test
    def reset_test_cache(self) -> None:
        """Forget the cached previous BEV (a new test run)."""
        self.prev_frame_info = dict(prev_bev=None, scene_token=None, prev_pose=None, frame_idx=None)

    def _test_metas(self, data_samples: SampleList) -> List[dict]:
        """Metas with the test-time CAN-bus deltas; updates the scene cache keys."""
        if not self.video_test_mode:
            return can_bus_deltas_each(self._metas(data_samples))
        if len(data_samples) != 1:
            raise ValueError(f'BEVFormer video_test_mode needs test batch size 1 (frames in scene '
                             f'order), got {len(data_samples)}; set test_dataloader.batch_size=1 '
                             'or video_test_mode=False')
        meta = self._metas(data_samples)[0]
        info = self.prev_frame_info
        scene, frame = meta['scene_token'], meta.get('frame_idx')
        if frame is None:
            raise KeyError("BEVFormer video_test_mode needs 'frame_idx' in the metainfo to check "
                           'the scene order')
        if int(frame) == 0 or scene != info['scene_token']:  # a scene (re)starts
            if int(frame) != 0:
                raise ValueError(f'BEVFormer video_test_mode: the test set is not in scene order: '
                                 f'scene {scene} starts at frame_idx {frame} (allowed: 0); use a '
                                 'sequential, unshuffled loader on one process')
            info.update(prev_bev=None, scene_token=scene)
        elif int(frame) != int(info['frame_idx']) + 1:
            raise ValueError(f'BEVFormer video_test_mode: the test set is not in scene order: '
                             f'scene {scene} frame_idx {frame} follows {info["frame_idx"]} '
                             f'(allowed: {int(info["frame_idx"]) + 1})')
        info['frame_idx'] = int(frame)
        meta['prev_bev_exists'] = info['prev_bev'] is not None
        meta['can_bus'], info['prev_pose'] = can_bus_delta(
            meta['can_bus'], info['prev_pose'] if meta['prev_bev_exists'] else None)
        return [meta]

    def test_heads(self, inputs: dict, data_samples: SampleList, only_bev: bool = False):
        """Test time: the head's outputs (``only_bev``: the BEV ``(B, HW, C)``) and metas of
        the current frame, with (and updating) the cached previous BEV."""
        img = inputs['imgs']
        if img.dim() == 6:
            img = img[:, -1]
        metas = self._test_metas(data_samples)
        prev_bev = self.prev_frame_info['prev_bev'] if self.video_test_mode else None
        preds = self.pts_bbox_head(self.extract_img_feat(img), metas, prev_bev, only_bev=only_bev)
        if self.video_test_mode:
            self.prev_frame_info['prev_bev'] = (preds if only_bev else preds['bev_embed']).detach()
        return preds, metas

    def predict(self, inputs: dict, data_samples: SampleList, **kwargs) -> SampleList:
        """Boxes in the LiDAR frame (``pred_instances_3d``), using the cached BEV."""
        preds, metas = self.test_heads(inputs, data_samples)
        results = self.pts_bbox_head.predict_by_feat(preds, metas)
        return self.add_pred_to_datasample(data_samples, results)

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None, **kwargs):
        """Raw head outputs (dict of tensors) of the current frame, for calibration and
        tracing: with a queue ``(B, T, N, 3, H, W)`` the history BEV is computed first (as
        in training, without gradient), so the temporal self-attention sees a real
        previous BEV; single frames run without one."""
        img, metas, prev_bev = self.current_frame(inputs, data_samples)
        return self.pts_bbox_head(self.extract_img_feat(img), metas, prev_bev)


def can_bus_deltas_each(metas: List[dict]) -> List[dict]:
    """Single-frame samples: each sample starts its own sequence (zero deltas,
    no previous BEV)."""
    return [can_bus_deltas([m])[0] for m in metas]
