# BEVFormer-base on nuScenes, the official recipe (upstream `bevformer_base.py`): R101-DCN,
# 900x1600 images (padded to 928x1600), queue of 4 frames, 24 epochs, 8 GPUs x 1 sample.
# Official: mAP 41.6 / NDS 51.7 (nuScenes val). Not reproduced here (CPU-only machine).
# Upstream initialises from ckpts/r101_dcn_fcos3d_pretrain.pth (FCOS3D weights):
#   bash tools/dist_train.sh configs/bevformer/bevformer-base_8xb1-24e_nus.py 8 \
#       --cfg-options load_from=ckpts/r101_dcn_fcos3d_pretrain.pth
# A released checkpoint (mmdet3d 0.17 boxes) evaluates after
#   python tools/convert_checkpoint.py bevformer bevformer_r101_dcn_24ep.pth bevformer_base_1x.pth
_base_ = [
    '../_base_/models/bevformer-base.py', '../_base_/datasets/nus-bevformer.py',
    '../_base_/schedules/bevformer-adamw-24e.py', '../_base_/default_runtime.py'
]
train_dataloader = dict(dataset=dict(queue_length=_base_.queue_length))
