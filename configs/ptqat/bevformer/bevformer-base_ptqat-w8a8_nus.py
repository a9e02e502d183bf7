# bevformer-base PTQAT, W8A8: 8-bit weights and activations.
_base_ = ['./bevformer-base_ptqat-w4a8_nus.py']
model = dict(quantization=dict(w_bits=8))
