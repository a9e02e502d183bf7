# BEVDepth4D-tiny, 8 more epochs on the 160-scene synthetic set, continued from the committed
# checkpoints/bevdepth4d-tiny_synth-large_fp16.pth (configs/bevdepth4d/bevdepth4d-tiny_synth-large.py,
# run c1). The recipe that gave BEVDet-tiny +0.025 NDS on the 400-sample val set
# (configs/bevdet/bevdet-tiny_synth-large-16e.py, run c2): a fresh 50-iteration warm-up and an
# 8-epoch cosine at half c1's peak lr. Same model, same state_dict keys, same data.
#   python tools/train.py configs/bevdepth4d/bevdepth4d-tiny_synth-large-16e.py --cfg-options randomness.seed=0
#   python tools/publish_checkpoint.py work_dirs/bevdepth4d-tiny_synth-large-16e/epoch_8.pth \
#       checkpoints/bevdepth4d-tiny_synth-large-16e_fp16.pth --config configs/bevdepth4d/bevdepth4d-tiny_synth-large-16e.py
# This made the committed checkpoints/bevdepth4d-tiny_synth-large-16e_fp16.pth (run c2 below).
#
# RUN c2 (2026-12-05 21:00-21:41, the project's 2-core CPU, one torch thread, 1 data worker, the
# other core training BEVDet-tiny): batch 4, AdamW lr 1e-3 (50-iteration warm-up, cosine), 8
# epochs = 3,200 iterations at ~0.7 s/iter, 41 min with the four validations. Val (the quick
# start's 40 samples), NDS / mAP after 2/4/6/8 epochs: 0.2304 / 0.1069, 0.2074 / 0.1089, 0.3009 /
# 0.1240, 0.2978 / 0.1247 (c1's end: 0.2252 / 0.1058). Epoch 8 (the last, fixed before the run)
# published; its float16 file scores 0.2962 / 0.1246 on the 40 samples and 0.2939 / 0.1177 on
# the 400-sample val set (c1: 0.2035 / 0.0922): +0.090 NDS, +0.026 mAP on 400 samples. TP errors
# (400 samples): mATE 0.93, mASE 0.29, mAOE 0.34, mAVE 1.24, mAAE 0.09. Just short of NDS 0.30.
#
# RUN c3 (2026-12-06 02:38-02:57, not published: diverged). 8 more epochs from c2's checkpoint at
# half the peak lr, the same schedule otherwise:
#   python tools/train.py configs/bevdepth4d/bevdepth4d-tiny_synth-large-16e.py --cfg-options \
#       randomness.seed=0 load_from=checkpoints/bevdepth4d-tiny_synth-large-16e_fp16.pth optim_wrapper.optimizer.lr=5e-4
# loss_depth rose from 1.7 to 25 within the first epoch and to 31 in the second (grad norm
# before clipping 10 -> 2e4 -> 3e4, loss_heatmap 3.5 -> 14); val after 2 epochs NDS 0.0914 / mAP
# 0.0039, stopped there. Why (measured on six train batches with the checkpoints' weights): the
# depth loss is BEVDepth's binary cross-entropy on the softmax *probabilities*; where a wrong bin
# takes p -> 1 in float32, 1 - p is lost and the BCE backward, 1 / max(p (1 - p), 1e-12), returns
# gradients that the softmax Jacobian no longer cancels. c2's checkpoint already has such pixels
# (true-bin p down to 2e-21 in 0.2 % of them; one batch's loss_depth gradient norm 480 against
# ~2 on the others; c2's log shows the same spikes, 570-1470, which it survived); after c3's first
# 2 epochs 8-10 % of the pixels have p < 1e-6 and the loss_depth gradient norm is 2e4-5e4, so with
# the max-norm-5 clipping those pixels set every update's direction. A loss computed from the
# depth logits has bounded gradients: img_view_transformer.depth_loss='bce_logits' (opt-in, so
# that the seeded tables keep their numerics). The same 8 epochs with it trained stably and made
# the 24-epoch checkpoint: configs/bevdepth4d/bevdepth4d-tiny_synth-large-24e.py, run c5.
_base_ = ['./bevdepth4d-tiny_synth-large.py']

load_from = 'checkpoints/bevdepth4d-tiny_synth-large_fp16.pth'

lr = 1e-3
optim_wrapper = dict(optimizer=dict(lr=lr))
