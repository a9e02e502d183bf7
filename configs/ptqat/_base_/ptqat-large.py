# Ablation of PTQAT: fine-tune the half of the quantized layers with the LARGEST discrepancy
# (the intuitive but, per the paper, worse choice). Same usage as ptqat.py.
ptqat_hook = dict(
    type='PTQATHook',
    calib_batches=32,
    metric='l2',
    mode='local',
    strategy='large',
    ratio=0.5,
    train_unquantized=False,
    freeze_bn_stats=True,
    save_calibrated=True,
)
