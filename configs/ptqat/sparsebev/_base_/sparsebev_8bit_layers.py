# SparseBEV layers kept at 8-bit weights in every quantized SparseBEV config: the first conv
# and the (shared) decoder layer's class / box output layers.
sparsebev_8bit_layers = {
    r'^img_backbone\.conv1$': dict(w_bits=8),
    r'^pts_bbox_head\.transformer\.decoder\.decoder_layer\.(cls_branch\.6|reg_branch\.4)$':
    dict(w_bits=8),
}
