# bevformer-base PTQAT, W4: 4-bit weights, float activations (the paper's W4 setting).
_base_ = ['./bevformer-base_ptqat-w4a8_nus.py']
model = dict(quantization=dict(a_bits=None, quantize_inputs=False))
