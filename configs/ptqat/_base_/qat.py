# Full QAT baseline: after the same PTQ calibration, fine-tune every quantized layer and every
# other parameter (norms ...); BN statistics keep updating as in ordinary training.
# Same usage as ptqat.py (custom_hooks = [_base_.ptqat_hook], load_from = float checkpoint).
ptqat_hook = dict(
    type='PTQATHook',
    calib_batches=32,
    metric='l2',
    mode='local',
    strategy='all',
    train_unquantized=True,
    freeze_bn_stats=True,      # no effect here: no norm layer is frozen
    save_calibrated=True,
)
