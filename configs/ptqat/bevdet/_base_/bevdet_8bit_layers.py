# BEVDet layers kept at 8-bit weights in every quantized BEVDet config: the first conv and the
# detection head's output convs, as deployments usually keep them.
bevdet_8bit_layers = {
    r'^img_backbone\.conv1$': dict(w_bits=8),
    r'^pts_bbox_head\.task_heads\.\d+\.\w+\.1$': dict(w_bits=8),
}
