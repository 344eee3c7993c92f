# RefCOCO/+/g pre-training schedule of the official code (main_pretrain.py):
# AdamW 1e-4, weight decay 5e-4 on all parameters, 10 epochs with the
# learning rate multiplied by 0.05 after epochs 6 and 8, gradient norm
# clipped at 0.1. Backbone 5e-5 and text encoder 1e-5 when they are trained
# (both are frozen in the default model).
max_epochs = 10
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=5e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.5),
            'language_model.bert': dict(lr_mult=0.1),
        }))

param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[6, 8],
        gamma=0.05)
]

# The official runs used 4 GPUs x 2 clips; `--auto-scale-lr` style scaling
# is not applied by default.
auto_scale_lr = dict(enable=False, base_batch_size=8)
