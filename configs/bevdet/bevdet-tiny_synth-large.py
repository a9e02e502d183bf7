# BEVDet-tiny, continued from the committed 24-scene model (configs/bevdet/bevdet-tiny_synth.py,
# checkpoints/bevdet-tiny_synth_fp16.pth) on a 7x larger synthetic set, on a GPU: the recipe
# of issue 16's "stronger FP models" (the 24-scene model memorises its training scenes, see
# the experiment log of bevdet-tiny_synth.py). Same model, same state_dict keys.
#
# Data (deterministic; its 4 val scenes are the quick start's val split, file for file, since
# every scene derives from the seed and its name):
#   python tools/make_synthetic_nuscenes.py data/nuscenes_synth_large --version v1.0-trainval \
#       --train-scenes 160 --val-scenes 4 --samples-per-scene 10 --cam-sweeps 0 \
#       --lidar-sweeps 0 --no-occupancy --workers 14
#   python tools/create_data.py nuscenes --root-path data/nuscenes_synth_large \
#       --version v1.0-trainval
# Training: python tools/train.py configs/bevdet/bevdet-tiny_synth-large.py
# (on a CPU-only machine the same command runs, ~25x slower than on the GPU used.)
_base_ = ['./bevdet-tiny_synth.py']

data_root = 'data/nuscenes_synth_large/'
train_dataloader = dict(batch_size=8, num_workers=6, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

load_from = 'checkpoints/bevdet-tiny_synth_fp16.pth'

lr = 4e-3
max_epochs = 12
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min_ratio=1e-2, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
