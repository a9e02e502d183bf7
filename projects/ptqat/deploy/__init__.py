"""Whole-detector deployment: ONNX export with Q/DQ, host-side pooling indices, the sidecar,
and an onnxruntime runner (see README "Deployment")."""
from .detector import (DeployDetector, flatten_head_outputs, frame_inputs, graph_feed, head_output_names,
                       is_camera_aware, is_temporal, torch_head_outputs, unflatten_head_outputs)
from .export import DEFAULT_OPSET, SIDECAR, check_exportable, export_detector
from .pooling import RANK_NAMES, pooling_indices, scatter_bev_pool
from .runtime import OrtDetector

__all__ = ['DEFAULT_OPSET', 'DeployDetector', 'OrtDetector', 'RANK_NAMES', 'SIDECAR', 'check_exportable',
           'export_detector', 'flatten_head_outputs', 'frame_inputs', 'graph_feed', 'head_output_names',
           'is_camera_aware', 'is_temporal', 'pooling_indices', 'scatter_bev_pool', 'torch_head_outputs',
           'unflatten_head_outputs']
