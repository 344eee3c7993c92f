# Ref-YouTube-VOS fine-tuning schedule of the official code (main.py):
# as pre-training but 6 epochs, learning rate x0.1 after epochs 3 and 5
# (main.py ignores --lr_gamma, so the default gamma 0.1 applies).
_base_ = './schedule_pretrain_10e.py'

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[3, 5],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
