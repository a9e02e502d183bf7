# BEVDet-tiny W4A8 PTQAT with the Q/DQ placement NVIDIA ModelOpt / TensorRT use
# (ptqat.quant.placement): one shared input quantizer per tensor read by several layers (a ResNet
# block's conv1 + downsample, the CenterHead branches on the shared conv) and quantized residual
# adds (the shortcut operand, TensorRT's recommendation; 'both' also quantizes the conv branch).
# Everything else as bevdet-tiny_ptqat-w4a8_synth.py (README "Deployment" compares the two).
_base_ = ['./bevdet-tiny_ptqat-w4a8_synth.py']
model = dict(quantization=dict(share_input_quantizers=True, quantize_residual_adds='residual'))
