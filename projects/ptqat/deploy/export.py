"""Export a BEVDet / BEVDepth4D (float or quantized) to one ONNX graph + a JSON sidecar."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..quant import export_onnx, iter_quantizers, pack_int4_weights, quantized_layers
from .detector import DeployDetector, frame_inputs, graph_feed
from .pooling import RANK_NAMES

__all__ = ['export_detector', 'check_exportable', 'SIDECAR', 'DEFAULT_OPSET']

#: sidecar file name in the output directory
SIDECAR = 'deploy.json'
#: ScatterElements(reduction='add') needs opset >= 16
DEFAULT_OPSET = 17


def check_exportable(detector: nn.Module) -> None:
    """Raise RuntimeError when the detector has quantizers but none has a step size: a float
    checkpoint loaded into a quantized config, never calibrated. (A single uninitialised
    quantizer that the forward uses makes ``export_onnx`` raise with its name.)"""
    quantizers = [q for _, q in iter_quantizers(detector) if q.enabled]
    if quantizers and not any(q.is_initialized for q in quantizers):
        raise RuntimeError(
            f'none of the {len(quantizers)} quantizers of {type(detector).__name__} has a step size: export a '
            'PTQ/QAT/PTQAT checkpoint (one that holds calibrated step sizes), not a float checkpoint loaded '
            'into a quantized config')


def _layer_table(detector: nn.Module) -> List[Dict[str, Any]]:
    """Per quantized layer: bit widths and the activation step size (the Q/DQ scale)."""
    rows = []
    shared: Dict[int, List[str]] = {}   # input quantizers shared by several layers: their readers
    for name, layer in quantized_layers(detector):
        for q in layer.activation_quantizers():
            shared.setdefault(id(q), []).append(name)
    shared = {k: v for k, v in shared.items() if len(v) > 1}
    for name, layer in quantized_layers(detector):
        row: Dict[str, Any] = dict(name=name, w_bits=layer.w_bits, a_bits=layer.a_bits)
        aq = getattr(layer, 'input_quantizer', None)
        if aq is not None and aq.enabled and aq.is_initialized:
            row['input_scale'] = float(aq.effective_step_size().detach().reshape(-1)[0])
            row['input_signed'] = bool(aq.signed)
        rq = getattr(layer, 'residual_quantizer', None)   # QuantAdd: the shortcut operand
        if rq is not None and rq.enabled and rq.is_initialized:
            row['residual_scale'] = float(rq.effective_step_size().detach().reshape(-1)[0])
        if aq is not None and id(aq) in shared:
            row['input_quantizer_shared_with'] = [n for n in shared[id(aq)] if n != name]
        rows.append(row)
    return rows


def export_detector(detector: nn.Module, inputs: Dict[str, torch.Tensor], out_dir: str, *,
                    weights_int4: bool = False, opset: int = DEFAULT_OPSET,
                    class_names: Optional[Sequence[str]] = None,
                    meta: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write ``model.onnx`` (+ ``model_int4.onnx``), ``pooling_indices.npz`` and ``deploy.json``.

    Args:
        detector: BEVDet / BEVDepth4D, float or quantized with initialised step sizes.
        inputs: the data preprocessor's ``inputs`` of one sample (batch 1); its cameras give the
            pooling indices stored for a fixed rig and the example the graph is traced with.
        out_dir: output directory (created).
        weights_int4: also write ``model_int4.onnx`` with packed INT4 weights (opset 21).
        opset: opset of ``model.onnx`` (>= 16).
        class_names: the head's classes, for the sidecar.
        meta: extra JSON-able entries for the sidecar (config path, checkpoint, ...).
    Returns:
        the sidecar dict.
    """
    if opset < 16:
        raise ValueError(f'opset must be >= 16 (ScatterElements with reduction=add), got {opset}')
    check_exportable(detector)
    os.makedirs(out_dir, exist_ok=True)
    detector.eval()
    deploy = DeployDetector(detector).eval()
    frames = frame_inputs(detector, inputs)
    key = frames[0]
    prev = None
    if deploy.temporal:
        with torch.no_grad():
            feed0 = graph_feed(deploy, key, torch.zeros(1))
            cur = deploy.frame_bev(*(torch.from_numpy(feed0[n]) for n in deploy.input_names()[:-1]))
        prev = torch.zeros(1, cur.shape[1] * detector.num_adj, *cur.shape[2:])
    feed = graph_feed(deploy, key, prev)
    names_in, names_out = deploy.input_names(), deploy.output_names()
    args = tuple(torch.from_numpy(feed[n]) for n in names_in)
    path = osp.join(out_dir, 'model.onnx')
    export_onnx(deploy, args, path, opset=opset, input_names=names_in, output_names=names_out,
                dynamic_axes={r: {0: 'num_points'} for r in RANK_NAMES})
    np.savez(osp.join(out_dir, 'pooling_indices.npz'),
             **{k: v for k, v in feed.items() if k in RANK_NAMES or k == 'mlp_input'})
    with torch.no_grad():
        outs = deploy(*args)
    files = {'model': 'model.onnx'}
    int4_stats = None
    if weights_int4:
        int4_stats = pack_int4_weights(path, osp.join(out_dir, 'model_int4.onnx'))
        files['model_int4'] = 'model_int4.onnx'
    vt = detector.img_view_transformer
    sidecar = dict(
        format='ptqat-deploy/1',
        detector=type(detector).__name__,
        files=files,
        opset=opset,
        inputs=[dict(name=n, shape=list(feed[n].shape), dtype=str(feed[n].dtype),
                     dynamic={0: 'num_points'} if n in RANK_NAMES else {}) for n in names_in],
        outputs=[dict(name=n, shape=list(o.shape)) for n, o in zip(names_out, outs)],
        pooling_indices='pooling_indices.npz',
        pooling=dict(
            how='in graph: Gather(depth, ranks_depth) * Gather(context, ranks_feat), '
                'ScatterElements(reduction=add) over ranks_bev into the flattened (Z, Y, X) grid',
            grid_size_xyz=list(vt.grid_size), grid_lower_bound=vt.grid_lower_bound.tolist(),
            grid_interval=vt.grid_interval.tolist(), depth_bins=vt.grid_config['depth'],
            downsample=vt.downsample, num_points=int(feed['ranks_bev'].shape[0]),
            fixed_cameras_note='pooling_indices.npz holds the indices (and mlp_input) of the export sample\'s '
                               'cameras; recompute them with ptqat.deploy.frame_inputs when the cameras change'),
        images=dict(shape=list(feed['imgs'].shape), layout='(1, N, 3, H, W), the data preprocessor output '
                    '(normalised RGB)'),
        class_names=list(class_names) if class_names is not None else None,
        host=dict(box_decoding='pts_bbox_head.predict_by_feat (CenterPoint decode + Scale-NMS) on the head maps',
                  heatmap='logits (apply sigmoid)', dim='log sizes (exp) when norm_bbox'),
        quantized_layers=_layer_table(detector),
        weights_int4=int4_stats,
    )
    if deploy.temporal:
        sidecar['temporal'] = dict(
            num_adj=detector.num_adj, cur_bev_channels=int(outs[-1].shape[1]),
            align_after_view_transformation=detector.align_after_view_transformation,
            prev_bev='the adjacent frames\' cur_bev outputs concatenated (frame 1 first), each computed with '
                     'its cameras relative to the current key ego (align_after_view_transformation=False) '
                     'or in its own ego frame and warped by the ego motion (True; a streaming host can '
                     'cache the previous step\'s cur_bev)')
    if meta:
        sidecar['meta'] = meta
    with open(osp.join(out_dir, SIDECAR), 'w') as f:
        json.dump(sidecar, f, indent=1)
    return sidecar
