# BEVDepth4D-tiny PTQAT, W8A8: 8-bit weights and activations.
_base_ = ['./bevdepth4d-tiny_ptqat-w4a8_synth.py']
model = dict(quantization=dict(w_bits=8))
