# W8A8: 8-bit per-channel weights, 8-bit per-tensor layer inputs (see w4a8.py for the pattern).
quantization = dict(
    w_bits=8,
    a_bits=8,
    w_per_channel=True,
    quantize_inputs=True,
    skip=[],
    overrides={},
    w_init='mse',
    a_init='percentile',
)
