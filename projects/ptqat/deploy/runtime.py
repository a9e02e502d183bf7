"""Run an exported detector with onnxruntime and decode its boxes on the host."""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, List, Sequence

import torch
from torch import nn

from .detector import (DeployDetector, frame_inputs, graph_feed, head_output_names,
                       unflatten_head_outputs)

__all__ = ['OrtDetector']


class OrtDetector:
    """An exported graph in an onnxruntime session + the host side of the detector.

    The host side (pooling indices and camera vector from each sample's cameras, the
    adjacent frames' BEV maps, box decoding and NMS with ``pts_bbox_head.predict_by_feat``,
    the BEV -> LiDAR frame mapping) uses the PyTorch ``detector``'s non-network code only;
    every network layer runs in the graph.

    Args:
        export_dir: directory written by :func:`ptqat.deploy.export_detector`.
        detector: the detector built from the same config (its weights are not used).
        model: which file of the sidecar: ``'model'`` (default) or ``'model_int4'``.
        optimize: onnxruntime graph optimisations (True: ORT_ENABLE_ALL, which fuses Q/DQ
            into integer kernels; False: ORT_DISABLE_ALL, the exact float Q/DQ semantics).
        threads: intra-op threads (0: onnxruntime's default).
    """

    def __init__(self, export_dir: str, detector: nn.Module, model: str = 'model', optimize: bool = True,
                 threads: int = 1):
        import onnxruntime as ort
        with open(osp.join(export_dir, 'deploy.json')) as f:
            self.sidecar = json.load(f)
        files = self.sidecar['files']
        if model not in files:
            raise ValueError(f'model {model!r} is not in {sorted(files)} of {export_dir}/deploy.json')
        opts = ort.SessionOptions()
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                         else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(osp.join(export_dir, files[model]), opts,
                                            providers=['CPUExecutionProvider'])
        self.detector = detector.eval()
        self.deploy = DeployDetector(detector)
        self.head_names = head_output_names(detector)
        expected = [i['name'] for i in self.sidecar['inputs']]
        if expected != self.deploy.input_names():
            raise ValueError(f'{export_dir} was exported with inputs {expected}, but this detector takes '
                             f'{self.deploy.input_names()}: a different config?')

    def head_outputs(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Head maps ``{task{t}.{key}: (1, k, Y, X)}`` of one sample (data preprocessor inputs,
        batch 1), adjacent frames included for a temporal model."""
        frames = frame_inputs(self.detector, inputs)
        prev = None
        if self.deploy.temporal:
            tmp = self.sidecar['temporal']
            c = tmp['cur_bev_channels']
            y, x = self.sidecar['outputs'][-1]['shape'][2:]
            zeros = torch.zeros(1, c * tmp['num_adj'], y, x)
            adj = []
            for frame in frames[1:]:
                if not self.detector.with_prev:
                    adj.append(torch.zeros(1, c, y, x))
                    continue
                bev = torch.from_numpy(self.session.run(['cur_bev'], graph_feed(self.deploy, frame, zeros))[0])
                if frame['motion'] is not None:
                    bev = self.detector.shift_feature(bev, frame['motion'], frame['bda'])
                adj.append(bev)
            prev = torch.cat(adj, dim=1)
        outs = self.session.run(self.head_names, graph_feed(self.deploy, frames[0], prev))
        return {n: torch.from_numpy(o) for n, o in zip(self.head_names, outs)}

    def predict(self, inputs: Dict[str, torch.Tensor], data_samples: Sequence) -> List:
        """``model.predict`` with the graph: data samples with ``pred_instances_3d``."""
        batch = inputs['imgs'].shape[0]
        results = []
        for b in range(batch):
            one = {k: v[b:b + 1] for k, v in inputs.items() if isinstance(v, torch.Tensor)}
            preds = unflatten_head_outputs(self.head_outputs(one))
            res = self.detector.pts_bbox_head.predict_by_feat(preds, [data_samples[b].metainfo])[0]
            bda = one.get('bda', None)
            results.append(self.detector.to_output_frame(res, data_samples[b], None if bda is None else bda[0]))
        return self.detector.add_pred_to_datasample(list(data_samples), results)
