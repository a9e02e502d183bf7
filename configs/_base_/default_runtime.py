# Runtime defaults (hooks, logging, environment) for the ptqat configs.
#
# `default_scope` / `custom_imports` come from the model bases (configs/_base_/models/*), so
# they are not repeated here (mmengine forbids a key defined by two bases).
#
# Distributed backend: mmengine's default, nccl, unless the environment variable
# PTQAT_DIST_BACKEND says otherwise (e.g. `PTQAT_DIST_BACKEND=gloo` or `mpi`); or pass
# `--cfg-options env_cfg.dist_cfg.backend=gloo`. It is only read by distributed launchers
# (`--launcher pytorch|slurm|mpi`); single-process training (CPU or one GPU) never touches it.
# Note: mmengine's `pytorch`/`slurm` launchers call `torch.cuda.set_device`, which fails with
# a CPU-only torch build, whatever the backend.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='Det3DVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='{{$PTQAT_DIST_BACKEND:nccl}}'),
)

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
