# SparseBEV-r50 PTQAT, W4: 4-bit weights, float activations (the paper's W4 setting).
_base_ = ['./sparsebev-r50_ptqat-w4a8_nus.py']
model = dict(quantization=dict(a_bits=None, quantize_inputs=False))
