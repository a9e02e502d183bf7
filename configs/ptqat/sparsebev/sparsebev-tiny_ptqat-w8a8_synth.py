# SparseBEV-tiny PTQAT, W8A8: 8-bit weights and activations.
_base_ = ['./sparsebev-tiny_ptqat-w4a8_synth.py']
model = dict(quantization=dict(w_bits=8))
