"""SparseBEV (Liu et al., ICCV 2023) for MMDetection3D 1.x, upstream key names.

Registered on import: ``SparseBEV`` (detector), ``SparseBEVHead``, ``SparseBEVTransformer``,
``SparseBEVTransformerDecoder``/``DecoderLayer``, ``SparseBEVSelfAttention``,
``SparseBEVSampling``, ``AdaptiveMixing`` (``MODELS``) and ``SparseBEVHungarianAssigner3D``
(``TASK_UTILS``). Shared DETR3D pieces (GridMask, NMSFreeCoder, box normalisation) come
from :mod:`ptqat.models.detr3d`.

Quantization notes:

* ``AdaptiveMixing``'s two products of runtime tensors are ``ptqat.quant.MatMul`` modules,
  which ``quantize_model`` turns into ``QuantMatMul`` (both operands quantized at ``a_bits``).
* The decoder runs ONE ``decoder_layer`` six times. Its quantized layers are single modules,
  so every stage uses the same quantizers and ``ptqat.quant`` sees each of them six times
  per forward: ``calibrate`` accumulates the activation statistics over all calls (for
  ``percentile``/``mse`` the per-call estimates are averaged, ``minmax`` takes the max,
  ``lsq`` the global mean), ``measure_discrepancy`` sums the per-sample discrepancies and
  sample counts over the calls (the value is the mean over all stages' samples; in
  ``cumulative`` mode the calls are matched one by one), and ``select_layers`` ranks each
  module once: one decision for all stages.
"""
from .adaptive_mixing import AdaptiveMixing
from .assigner import SparseBEVHungarianAssigner3D
from .bbox_coding import decode_bbox, encode_bbox
from .decoder import SparseBEVTransformerDecoder, SparseBEVTransformerDecoderLayer
from .msmv_sampling import (group_features, make_sample_points, msmv_sampling, project_points,
                            sampling_4d)
from .sparsebev import SparseBEV, time_differences
from .sparsebev_head import SparseBEVHead
from .sparsebev_sampling import SparseBEVSampling, warp_by_velocity
from .sparsebev_self_attention import SparseBEVSelfAttention
from .transformer import SparseBEVTransformer

__all__ = [
    'AdaptiveMixing', 'SparseBEVHungarianAssigner3D', 'decode_bbox', 'encode_bbox',
    'SparseBEVTransformerDecoder', 'SparseBEVTransformerDecoderLayer', 'group_features',
    'make_sample_points', 'msmv_sampling', 'project_points', 'sampling_4d', 'SparseBEV',
    'time_differences', 'SparseBEVHead', 'SparseBEVSampling', 'warp_by_velocity',
    'SparseBEVSelfAttention', 'SparseBEVTransformer'
]
