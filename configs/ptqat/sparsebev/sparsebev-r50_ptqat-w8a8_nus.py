# SparseBEV-r50 PTQAT, W8A8: 8-bit weights and activations.
_base_ = ['./sparsebev-r50_ptqat-w4a8_nus.py']
model = dict(quantization=dict(w_bits=8))
