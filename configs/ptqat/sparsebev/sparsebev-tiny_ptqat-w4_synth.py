# SparseBEV-tiny PTQAT, W4: 4-bit weights, float activations (the paper's W4 setting).
_base_ = ['./sparsebev-tiny_ptqat-w4a8_synth.py']
model = dict(quantization=dict(a_bits=None, quantize_inputs=False))
