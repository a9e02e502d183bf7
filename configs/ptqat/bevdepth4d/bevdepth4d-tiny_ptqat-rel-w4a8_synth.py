# BEVDepth4D-tiny W4A8, PTQAT with a scale-free discrepancy: ||X_Q - X|| / ||X|| per layer
# instead of the paper's raw Euclidean distance (which favours layers with small outputs).
# Measured on the quick-start data: see the README's BEVDepth4D table.
_base_ = ['./bevdepth4d-tiny_ptqat-w4a8_synth.py']
custom_hooks = [dict(_base_.custom_hooks[0], metric='relative'), _base_.resource_hook]
