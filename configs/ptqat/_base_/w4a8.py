# W4A8 (the paper's main setting): 4-bit per-channel weights, 8-bit per-tensor layer inputs.
#
# Model-agnostic on purpose: `skip`/`overrides` regexes that match no layer are an error in
# ptqat.quant, so model-specific exceptions (e.g. the first conv and the head's final convs at
# 8 bits) belong in the per-model ptqat config, which also wraps the float model:
#
#   _base_ = ['../../bevdet/bevdet-r50_8xb8-24e_nus.py', '../_base_/w4a8.py', '../_base_/ptqat.py']
#   model = dict(_delete_=True, type='PTQATModel', model=_base_.model, quantization=dict(_base_.quantization,
#       overrides={r'^img_backbone\.conv1$': dict(w_bits=8),
#                  r'^pts_bbox_head\.task_heads\.\d+\.\w+\.1$': dict(w_bits=8)}))
#   custom_hooks = [_base_.ptqat_hook]
#   load_from = 'work_dirs/bevdet-r50_8xb8-24e_nus/epoch_24.pth'  # the float checkpoint to quantize
#
# Fields: see ptqat.quant.QuantConfig (unknown keys raise when the model is built).
quantization = dict(
    w_bits=4,
    a_bits=8,
    w_per_channel=True,
    quantize_inputs=True,
    skip=[],
    overrides={},
    w_init='mse',          # per-channel MSE-optimal weight steps (best PTQ start at 4 bits)
    a_init='percentile',   # 99.99th percentile of |x|, averaged over the calibration batches
)
