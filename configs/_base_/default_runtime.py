default_scope = 'dmformer'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # dmformer's CheckpointHook (MMEngine's, registered under the same name)
    # writes each checkpoint and the last_checkpoint pointer to a temporary
    # file renamed only once complete: a kill or a full disk never leaves a
    # truncated epoch_N.pth (dmformer/engine/hooks/checkpoint_hook.py)
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # off by default; tools/test.py --show-dir DIR turns it on
    visualization=dict(type='RVOSVisualizationHook', draw=False),
    # training stops before the first iteration if a frozen module got no
    # pretrained weights (check_frozen=False allows it for smoke tests);
    # fine-tuning configs set drop_keys to re-learn the class heads
    pretrained_weights=dict(type='PretrainedWeightsHook'),
    # a step whose loss (or a loss term) is NaN/inf is skipped with a
    # warning; this many in a row stop the run with one error line
    nonfinite_loss=dict(type='NonFiniteLossHook', max_consecutive_steps=10),
)
# random states saved with every checkpoint and restored by --resume, so a
# resumed run repeats the uninterrupted one step for step
custom_hooks = [dict(type='RandomStateHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # timeout (s) of every collective operation: a rank that dies or hangs
    # ends the others after at most this long. It must exceed the longest
    # time one rank legitimately waits for another: a training step takes
    # seconds, but rank 0 alone writes each checkpoint (~1 GB: under a
    # minute even on network storage) and computes the validation metrics
    # of all ranks (A2D's mAP: a few minutes) while the others wait. 15 min
    # is 3x that; torch's defaults are 30 min (gloo) and 10 min (NCCL).
    dist_cfg=dict(backend='nccl', timeout=900),
)
# Multi-process runs use MMEngine's DDP wrapper, whose training step skips
# the model's (and so its non-finite-loss check). The wrapper that skips a
# non-finite loss on all ranks together is opt-in, since its test hung once
# (a rank waiting in a collective) and the cause is not known yet:
#   model_wrapper_cfg = dict(type='dmformer.GuardedDistributedDataParallel',
#                            broadcast_buffers=False,
#                            find_unused_parameters=False)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='RVOSLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
