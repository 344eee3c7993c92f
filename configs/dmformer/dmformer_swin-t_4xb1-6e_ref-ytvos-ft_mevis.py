# DMFormer (Swin-T + BERT-base) on MeViS, fine-tuned from a Ref-YouTube-VOS
# checkpoint as the MeViS baselines are. The paper reports no MeViS result,
# so this is a recipe, not a reproduction: the Ref-YouTube-VOS fine-tuning
# schedule (6 epochs, lr x0.1 after epochs 3 and 5) on MeViS train, scored
# on valid_u (local J&F of the union masks). For the evaluation server use
# dmformer_swin-t_4xb1-6e_ref-ytvos-ft_mevis-valid.py.
_base_ = [
    '../_base_/models/dmformer_swin-t.py', '../_base_/datasets/mevis.py',
    '../_base_/schedules/schedule_finetune_6e.py',
    '../_base_/default_runtime.py'
]

# the last epoch of dmformer_swin-t_4xb1-6e_ref-ytvos.py
load_from = 'work_dirs/dmformer_swin-t_4xb1-6e_ref-ytvos/epoch_6.pth'

# The official fine-tuning deletes the pre-trained class heads
# (`class_embed`) before loading: the new dataset's heads start from their
# initialisation. `drop_keys=[]` keeps them.
default_hooks = dict(
    pretrained_weights=dict(drop_keys=[r'bbox_head\.cls_branches\.']))

train_cfg = dict(val_interval=1)
