"""BEVDet detector (camera-only, single frame) for MMDetection3D 1.x."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet3d.models.detectors import Base3DDetector
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from ptqat.box_geometry import transform_boxes  # noqa: F401  (re-exported: models.bevdet.transform_boxes)

SampleList = List[Det3DDataSample]


def compute_sensor2keyegos(sensor2egos: Tensor, ego2globals: Tensor,
                           key_cam: int = 0) -> Tensor:
    """``sensor2keyego = inv(ego2global[key_cam]) @ ego2global @ sensor2ego``.

    Computed in float64 as upstream BEVDet does; returns the input dtype.

    Args:
        sensor2egos (Tensor): ``(B, N, 4, 4)`` camera -> ego (camera time).
        ego2globals (Tensor): ``(B, N, 4, 4)`` ego (camera time) -> global.
        key_cam (int): Camera whose ego pose defines the key ego frame
            (upstream: the first camera of ``data_config['cams']``).
    """
    s2e = sensor2egos.double()
    e2g = ego2globals.double()
    global2keyego = torch.inverse(e2g[:, key_cam:key_cam + 1])
    return (global2keyego @ e2g @ s2e).to(sensor2egos.dtype)


def homogeneous_bda(bda: Tensor) -> Tensor:
    """A BEV augmentation ``(..., 3, 3)`` or ``(..., 4, 4)`` as ``(..., 4, 4)``
    float64 (a 3x3 gets no translation)."""
    out = torch.eye(4, dtype=torch.float64, device=bda.device).expand(
        *bda.shape[:-2], 4, 4).clone()
    out[..., :bda.shape[-2], :bda.shape[-1]] = bda.double()
    return out


@MODELS.register_module()
class BEVDet(Base3DDetector):
    r"""BEVDet: image encoder -> LSS view transform -> BEV encoder -> head.

    Sub-modules (official ``state_dict`` prefixes): ``img_backbone``,
    ``img_neck``, ``img_view_transformer``, ``img_bev_encoder_backbone``,
    ``img_bev_encoder_neck``, ``pts_bbox_head``.

    **Input contract.** ``inputs`` (as produced by
    :class:`BEVDetDataPreprocessor`) is a dict of float32 tensors:

    ============== ================= =========================================
    key            shape             meaning
    ============== ================= =========================================
    imgs           (B, N, 3, H, W)   normalised RGB network input (augmented)
    sensor2keyegos (B, N, 4, 4)      camera -> key-ego frame (see below)
    ego2globals    (B, N, 4, 4)      ego pose at each camera's timestamp
                                     (carried along, unused by BEVDet)
    intrins        (B, N, 3, 3)      intrinsics of the *original* image
    post_rots      (B, N, 3, 3)      image augmentation: pixel' =
                                     post_rot @ pixel + post_tran
    post_trans     (B, N, 3)
    bda            (B, 4, 4)         BEV augmentation applied after
                                     sensor2keyego (identity at test time)
    ============== ================= =========================================

    ``sensor2keyegos`` may be omitted if ``sensor2egos`` ``(B, N, 4, 4)`` and
    ``ego2globals`` are given: then it is computed with
    :func:`compute_sensor2keyegos` (key camera ``key_cam``, default 0 =
    the first camera, CAM_FRONT_LEFT in BEVDet's camera order).
    ``post_rots``/``post_trans``/``bda`` default to identity/zero/identity.

    **Frames.** The key-ego frame is the ego frame at the timestamp of the key
    camera. The BEV grid, the heads and the predictions live in the *BEV
    frame* ``bda @ key-ego`` (x forward, y left, z up; at test time,
    ``bda = I``, it is the key-ego frame itself).  Training targets
    ``data_samples[i].gt_instances_3d.bboxes_3d`` (``LiDARInstance3DBoxes``,
    bottom centre, 9-dim with velocity) and ``.labels_3d`` must be given in
    that BEV frame (i.e. with the BEV augmentation already applied).

    ``predict`` returns boxes in the BEV frame, unless the sample's metainfo
    has ``lidar2keyego`` (4x4, LiDAR -> key ego): then the boxes are mapped
    into the LiDAR frame with ``inv(bda @ lidar2keyego)`` (this also undoes
    a test-time BEV augmentation), which is what mmdet3d's stock
    ``NuScenesMetric`` expects.

    **Outputs.** ``loss`` -> dict of losses (``task0.loss_heatmap``,
    ``task0.loss_{xy,z,whl,yaw,vel}``); ``predict`` -> data samples with
    ``pred_instances_3d`` (``bboxes_3d`` ``LiDARInstance3DBoxes`` 9-dim,
    ``scores_3d``, ``labels_3d`` in the head's class order); ``_forward``
    (``mode='tensor'``) -> the raw head outputs, a tuple over tasks of
    one-element lists of dicts ``reg, height, dim, rot, vel, heatmap``
    (``(B, k, Y, X)`` maps), for tracing and quantization calibration.

    Args:
        img_backbone, img_neck, img_view_transformer,
        img_bev_encoder_backbone, img_bev_encoder_neck, pts_bbox_head
            (dict): Configs of the sub-modules (``pts_bbox_head`` may be None
            in the dense-task subclasses, ``ptqat.models.dense_heads``).
        train_cfg, test_cfg (dict, optional): ``dict(pts=...)`` (upstream
            layout) or the head's config directly; given to the head.
        key_cam (int): See above. Defaults to 0.
        data_preprocessor (dict, optional): Usually
            ``dict(type='BEVDetDataPreprocessor')``.
    """

    def __init__(self,
                 img_backbone: dict,
                 img_neck: dict,
                 img_view_transformer: dict,
                 img_bev_encoder_backbone: dict,
                 img_bev_encoder_neck: dict,
                 pts_bbox_head: Optional[dict],
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 key_cam: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck)
        self.img_view_transformer = MODELS.build(img_view_transformer)
        self.img_bev_encoder_backbone = MODELS.build(img_bev_encoder_backbone)
        self.img_bev_encoder_neck = MODELS.build(img_bev_encoder_neck)
        self.pts_bbox_head = None  # None: no detection head (occupancy / map-only models)
        if pts_bbox_head is not None:
            head_cfg = dict(pts_bbox_head)
            head_cfg.update(train_cfg=self._pts_cfg(train_cfg), test_cfg=self._pts_cfg(test_cfg))
            self.pts_bbox_head = MODELS.build(head_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.key_cam = key_cam

    @staticmethod
    def _pts_cfg(cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        return cfg.get('pts', cfg)

    # -------------------------------------------------------------- encoders
    def image_encoder(self, imgs: Tensor) -> Tensor:
        """``(B, N, 3, H, W)`` -> ``(B, N, C, H/16, W/16)``."""
        B, N, C, H, W = imgs.shape
        x = self.img_backbone(imgs.reshape(B * N, C, H, W))
        x = self.img_neck(x)
        if isinstance(x, (list, tuple)):
            x = x[0]
        return x.reshape(B, N, *x.shape[1:])

    def bev_encoder(self, x: Tensor) -> Tensor:
        """``(B, C, Y, X)`` -> ``(B, C', Y, X)`` (BEVDet-R50: 64 -> 256)."""
        x = self.img_bev_encoder_backbone(x)
        x = self.img_bev_encoder_neck(x)
        if isinstance(x, (list, tuple)):
            x = x[0]
        return x

    def camera_inputs(self, inputs: dict) -> Dict[str, Tensor]:
        """The camera tensors for the view transformer (with defaults)."""
        imgs = inputs['imgs']
        B, N = imgs.shape[:2]
        dev, dt = imgs.device, torch.float32
        s2ke = inputs.get('sensor2keyegos', None)
        if s2ke is None:
            assert 'sensor2egos' in inputs and 'ego2globals' in inputs, \
                'need sensor2keyegos, or sensor2egos and ego2globals'
            s2ke = compute_sensor2keyegos(inputs['sensor2egos'],
                                          inputs['ego2globals'], self.key_cam)
        cams = dict(
            sensor2keyegos=s2ke,
            intrins=inputs['intrins'],
            post_rots=inputs.get(
                'post_rots',
                torch.eye(3, device=dev, dtype=dt).expand(B, N, 3, 3)),
            post_trans=inputs.get(
                'post_trans', torch.zeros(B, N, 3, device=dev, dtype=dt)),
            bda=inputs.get('bda',
                           torch.eye(4, device=dev, dtype=dt).expand(B, 4,
                                                                     4)))
        if 'ego2globals' in inputs:
            cams['ego2globals'] = inputs['ego2globals']
        return cams

    def extract_img_feat(self, inputs: dict) -> Tuple[Tensor, Tensor]:
        """Returns ``bev_feat (B, C, Y, X)`` and ``depth (B, N, D, h, w)``."""
        imgs = inputs['imgs']
        x = self.image_encoder(imgs)
        bev_feat, depth = self.img_view_transformer(
            x, img_shape=tuple(imgs.shape[-2:]), **self.camera_inputs(inputs))
        return self.bev_encoder(bev_feat), depth

    def extract_feat(self, inputs: dict) -> List[Tensor]:
        """List with the single BEV feature map fed to the head."""
        bev_feat, _ = self.extract_img_feat(inputs)
        return [bev_feat]

    # ----------------------------------------------------------------- modes
    def loss(self, inputs: dict, data_samples: SampleList,
             **kwargs) -> Dict[str, Tensor]:
        bev_feat, depth = self.extract_img_feat(inputs)
        losses = self.pts_bbox_head.loss([bev_feat], data_samples)
        losses.update(self.depth_losses(inputs, depth))
        return losses

    def depth_losses(self, inputs: dict, depth: Tensor) -> Dict[str, Tensor]:
        """``loss_depth`` when the view transformer has a depth-loss weight.

        Args:
            inputs (dict): needs ``gt_depth (B, N, H_in, W_in)`` (metres,
                0 = no LiDAR point; :class:`PointToMultiViewDepth`) if the
                weight is > 0.
            depth (Tensor): ``(B, N, D, h, w)`` of the key frame.
        """
        vt = self.img_view_transformer
        if getattr(vt, 'loss_depth_weight', 0.0) <= 0:
            return {}
        if inputs.get('gt_depth', None) is None:
            raise KeyError(
                'img_view_transformer.loss_depth_weight = '
                f'{vt.loss_depth_weight} needs inputs["gt_depth"]: add '
                'LoadPointsFromFile + PointToMultiViewDepth to the train '
                'pipeline (and gt_depth to PackBEVDetInputs keys), or set '
                'loss_depth_weight=0')
        return dict(loss_depth=vt.get_depth_loss(inputs['gt_depth'], depth))

    def predict(self, inputs: dict, data_samples: SampleList,
                **kwargs) -> SampleList:
        feats = self.extract_feat(inputs)
        results = self.pts_bbox_head.predict(feats, data_samples)
        bda = inputs.get('bda', None)
        for i, (res, sample) in enumerate(zip(results, data_samples)):
            results[i] = self.to_output_frame(
                res, sample, None if bda is None else bda[i])
        return self.add_pred_to_datasample(data_samples, results)

    def _forward(self, inputs: dict, data_samples: Optional[SampleList] = None,
                 **kwargs):
        feats = self.extract_feat(inputs)
        return self.pts_bbox_head(feats)

    @staticmethod
    def to_output_frame(result: InstanceData, data_sample: Det3DDataSample,
                        bda: Optional[Tensor] = None) -> InstanceData:
        """Map predicted boxes from the BEV frame to the LiDAR frame.

        Only if ``data_sample.metainfo`` has ``lidar2keyego``; the applied
        transform is ``inv(bda @ lidar2keyego)``.
        """
        lidar2keyego = data_sample.metainfo.get('lidar2keyego', None)
        if lidar2keyego is None:
            return result
        boxes = result.bboxes_3d
        l2k = torch.as_tensor(
            np.asarray(lidar2keyego) if not isinstance(lidar2keyego, Tensor)
            else lidar2keyego, dtype=torch.float64,
            device=boxes.tensor.device)
        m = l2k
        if bda is not None:
            m = homogeneous_bda(bda.to(l2k.device)) @ l2k
        result.bboxes_3d = transform_boxes(boxes, torch.inverse(m))
        return result
