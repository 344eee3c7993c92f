default_scope = 'dmformer'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # off by default; tools/test.py --show-dir DIR turns it on
    visualization=dict(type='RVOSVisualizationHook', draw=False),
    # training stops before the first iteration if a frozen module got no
    # pretrained weights (check_frozen=False allows it for smoke tests);
    # fine-tuning configs set drop_keys to re-learn the class heads
    pretrained_weights=dict(type='PretrainedWeightsHook'),
)
# random states saved with every checkpoint and restored by --resume, so a
# resumed run repeats the uninterrupted one step for step
custom_hooks = [dict(type='RandomStateHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='RVOSLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
