"""Whole-detector export glue for BEVDet / BEVDepth4D: the traced module, the host side
(camera geometry -> pooling indices, DepthNet camera vector, temporal BEV input) and the
head outputs.

One graph per detector (batch 1)::

    imgs (1, N, 3, H, W)  ranks_depth/ranks_feat/ranks_bev (P,)  [mlp_input (1, N, 27)]
    [prev_bev (1, num_adj*C, Y, X)]
        -> image encoder -> depth net -> BEV pooling (Gather/Mul/ScatterElements-add)
        -> [pre_process_net] -> [concat with prev_bev] -> BEV encoder -> CenterHead
        -> task{t}.{reg,height,dim,rot,vel,heatmap} maps (1, k, Y', X')  [+ cur_bev]

``imgs`` is the data preprocessor's output (normalised RGB). Box decoding and NMS stay on the
host (the head's ``predict_by_feat``), as mmdeploy does.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .pooling import RANK_NAMES, pooling_indices, scatter_bev_pool

__all__ = ['DeployDetector', 'head_output_names', 'frame_inputs', 'is_temporal', 'is_camera_aware',
           'torch_head_outputs', 'flatten_head_outputs', 'unflatten_head_outputs']


def is_temporal(detector: nn.Module) -> bool:
    """True for BEVDepth4D-style detectors (``num_adj`` adjacent frames)."""
    return hasattr(detector, 'num_adj') and hasattr(detector, 'split_frames')


def is_camera_aware(detector: nn.Module) -> bool:
    """True when the view transformer's depth net takes BEVDepth's camera vector."""
    return hasattr(detector.img_view_transformer, 'get_mlp_input')


def _check_supported(detector: nn.Module) -> None:
    vt = getattr(detector, 'img_view_transformer', None)
    if vt is None or not hasattr(vt, 'split_depth_context') or not hasattr(detector, 'pts_bbox_head'):
        raise TypeError(f'{type(detector).__name__} is not a BEVDet-family detector (LSS view transformer '
                        '+ CenterHead); export supports BEVDet and BEVDepth4D')
    if not vt.collapse_z:
        raise ValueError('export needs img_view_transformer.collapse_z=True (a 2D BEV map)')


def flatten_head_outputs(preds: Sequence[Sequence[Dict[str, Tensor]]]) -> List[Tuple[str, Tensor]]:
    """The head's ``tuple over tasks of [dict]`` as ``[('task{t}.{key}', (B, k, Y, X)), ...]``."""
    return [(f'task{t}.{k}', v) for t, task in enumerate(preds) for k, v in task[0].items()]


def unflatten_head_outputs(named: Dict[str, Tensor]) -> Tuple[List[Dict[str, Tensor]], ...]:
    """Inverse of :func:`flatten_head_outputs` (the layout ``predict_by_feat`` takes)."""
    tasks: Dict[int, Dict[str, Tensor]] = {}
    for name, value in named.items():
        task, key = name.split('.', 1)
        tasks.setdefault(int(task[4:]), {})[key] = value
    return tuple([tasks[t]] for t in sorted(tasks))


def head_output_names(detector: nn.Module) -> List[str]:
    """``task{t}.{key}`` for every task and head branch, in the head's order."""
    head = detector.pts_bbox_head
    names = []
    for t, task_head in enumerate(head.task_heads):
        names += [f'task{t}.{k}' for k in task_head.heads]
    return names


class DeployDetector(nn.Module):
    """The traced module: a BEVDet / BEVDepth4D at batch 1 with host-computed pooling indices.

    Args:
        detector: the (quantized or float) detector; its sub-modules keep their names under
            ``detector.`` so the ONNX node names say which layer they come from.

    Forward inputs (see the module doc): ``imgs``, the three ``ranks_*``, then ``mlp_input``
    for a camera-aware depth net, then ``prev_bev`` for a temporal model.
    Returns the head maps in :func:`head_output_names` order, then (temporal) ``cur_bev``
    ``(1, C, Y, X)``: this frame's map after ``pre_process_net`` (what the next frame's
    ``prev_bev`` is made of).
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        _check_supported(detector)
        self.detector = detector
        self.temporal = is_temporal(detector)
        self.camera_aware = is_camera_aware(detector)

    def input_names(self) -> List[str]:
        names = ['imgs', *RANK_NAMES]
        if self.camera_aware:
            names.append('mlp_input')
        if self.temporal:
            names.append('prev_bev')
        return names

    def output_names(self) -> List[str]:
        return head_output_names(self.detector) + (['cur_bev'] if self.temporal else [])

    def frame_bev(self, imgs: Tensor, ranks_depth: Tensor, ranks_feat: Tensor, ranks_bev: Tensor,
                  mlp_input: Optional[Tensor] = None) -> Tensor:
        """One frame's BEV map ``(1, C, Y, X)`` (after ``pre_process_net`` if any)."""
        det = self.detector
        vt = det.img_view_transformer
        x = det.image_encoder(imgs)                                    # (1, N, C, h, w)
        _, n, c, h, w = x.shape
        x = x.reshape(n, c, h, w)
        x = vt.depth_net(x, mlp_input.reshape(n, -1)) if self.camera_aware else vt.depth_net(x)
        depth, context = vt.split_depth_context(x, 1, n)
        bev = scatter_bev_pool(depth, context, ranks_depth, ranks_feat, ranks_bev, vt.grid_size)
        pre = getattr(det, 'pre_process_net', None)
        if pre is not None:
            bev = pre(bev)
            if isinstance(bev, (list, tuple)):
                bev = bev[0]
        return bev

    def forward(self, imgs: Tensor, ranks_depth: Tensor, ranks_feat: Tensor, ranks_bev: Tensor,
                *extra: Tensor) -> Tuple[Tensor, ...]:
        extra = list(extra)
        mlp_input = extra.pop(0) if self.camera_aware else None
        bev = self.frame_bev(imgs, ranks_depth, ranks_feat, ranks_bev, mlp_input)
        cur = bev
        if self.temporal:
            bev = torch.cat([bev, extra.pop(0)], dim=1)
        feat = self.detector.bev_encoder(bev)
        outs = [v for _, v in flatten_head_outputs(self.detector.pts_bbox_head([feat]))]
        return tuple(outs + [cur]) if self.temporal else tuple(outs)


def frame_inputs(detector: nn.Module, inputs: Dict[str, Tensor]) -> List[Dict[str, object]]:
    """Host side: the graph inputs of every frame of one sample (batch 1), key frame first.

    Reproduces the camera handling of ``BEVDet.extract_img_feat`` /
    ``BEVDepth4D.extract_bev_frames``: per frame the lifting extrinsics (for an adjacent frame
    with ``align_after_view_transformation``: in its own key-ego frame, plus the ego ``motion``
    its BEV map is warped by), the pooling indices and the DepthNet camera vector.

    Args:
        detector: the detector (its view transformer and settings).
        inputs: the data preprocessor's ``inputs`` of one sample (``imgs (1, T*N, 3, H, W)``
            and the camera tensors).
    Returns:
        list of ``T`` dicts: ``imgs``, ``ranks_*`` (numpy), ``mlp_input`` (camera-aware only),
        ``motion`` ((1, 4, 4) or None) and ``bda`` (1, 4, 4).
    """
    if inputs['imgs'].shape[0] != 1:
        raise ValueError(f"frame_inputs is per sample: imgs batch must be 1, got {tuple(inputs['imgs'].shape)}")
    vt = detector.img_view_transformer
    img_shape = tuple(inputs['imgs'].shape[-2:])
    ds = vt.downsample
    feat_size = (img_shape[0] // ds, img_shape[1] // ds)
    if is_temporal(detector):
        from ..models.bevdepth4d.bevdepth4d import ego_motion
        imgs, cams, bda = detector.split_frames(inputs)
    else:
        cams = detector.camera_inputs(inputs)
        bda = cams.pop('bda')
        imgs, cams = [inputs['imgs']], [cams]
    key_s2ke = cams[0]['sensor2keyegos']
    out = []
    for t, (im, cam) in enumerate(zip(imgs, cams)):
        cam = dict(cam)
        motion = None
        if t > 0 and detector.align_after_view_transformation:
            kc = detector.key_cam
            motion = ego_motion(key_s2ke[:, kc], cam['sensor2keyegos'][:, kc])
            cam['sensor2keyegos'] = (torch.inverse(motion.double())[:, None]
                                     @ cam['sensor2keyegos'].double()).to(key_s2ke.dtype)
        geo = dict(cam, bda=bda)
        frame: Dict[str, object] = dict(imgs=im, motion=motion, bda=bda)
        frame.update(pooling_indices(vt, geo, img_shape, feat_size))
        if is_camera_aware(detector):
            s2ke = key_s2ke if (t > 0 and getattr(detector, 'mlp_input_key_extrinsics', True)) \
                else cam['sensor2keyegos']
            frame['mlp_input'] = vt.get_mlp_input(s2ke, cam['intrins'], cam['post_rots'],
                                                  cam['post_trans'], bda)
        out.append(frame)
    return out


def torch_head_outputs(detector: nn.Module, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """PyTorch reference: the detector's own ``_forward`` head maps by output name."""
    with torch.no_grad():
        return dict(flatten_head_outputs(detector._forward(inputs)))


def graph_feed(deploy: DeployDetector, frame: Dict[str, object],
               prev_bev: Optional[Tensor] = None) -> Dict[str, np.ndarray]:
    """The ``{input name: array}`` feed of one frame (``prev_bev`` for a temporal model)."""
    feed = {'imgs': frame['imgs'].float().cpu().numpy()}
    for k in RANK_NAMES:
        feed[k] = np.asarray(frame[k], dtype=np.int64)
    if deploy.camera_aware:
        feed['mlp_input'] = frame['mlp_input'].float().cpu().numpy()
    if deploy.temporal:
        if prev_bev is None:
            raise ValueError('a temporal model needs prev_bev')
        feed['prev_bev'] = prev_bev.float().cpu().numpy()
    return feed
