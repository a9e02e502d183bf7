# W4 weight-only: 4-bit per-channel weights, float activations (see w4a8.py for the pattern).
quantization = dict(
    w_bits=4,
    a_bits=None,
    w_per_channel=True,
    quantize_inputs=False,
    skip=[],
    overrides={},
    w_init='mse',
    a_init='percentile',
)
