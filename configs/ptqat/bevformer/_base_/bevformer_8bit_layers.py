# BEVFormer layers kept at 8-bit weights in every quantized BEVFormer config:
# * the first conv and the output Linears of the class / box branches (as deployments
#   usually keep them, and as the BEVDet configs do);
# * every `sampling_offsets` Linear (TSA, SCA's MSDeformableAttention3D, the decoder's
#   MultiScaleDeformableAttention): their outputs are sampling positions in feature-map
#   pixels, so a weight error moves where the attention samples instead of scaling a
#   feature. A design choice, not measured yet (no trained BEVFormer weights here: upstream
#   initialises these weights to zero, so a random-init model cannot show the effect); to
#   try 4 bits, drop the entry (they are 18 of 284 layers, 1.28 M of 69.0 M parameters in
#   the base model).
# The BEV / query embeddings and the learned BEV positional encoding (nn.Embedding: 10.75 M
# parameters in the base model, 15.6 %) are
# lookup tables, not matmuls: they stay float. Their consumers' inputs are quantized (the
# first TSA value_proj / sampling_offsets / attention_weights Linears see the BEV queries
# through their 8-bit input quantizers). They are not quantized layers, so PTQAT never
# fine-tunes them (frozen with the other non-quantized parameters); QAT
# (train_unquantized=True) trains them.
bevformer_8bit_layers = {
    r'^img_backbone\.conv1$': dict(w_bits=8),
    r'^pts_bbox_head\.cls_branches\.\d+\.6$': dict(w_bits=8),
    r'^pts_bbox_head\.reg_branches\.\d+\.4$': dict(w_bits=8),
    r'\.sampling_offsets$': dict(w_bits=8),
}
