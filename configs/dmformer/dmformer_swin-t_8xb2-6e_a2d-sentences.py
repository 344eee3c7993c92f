# DMFormer, Swin-T + BERT-base (GLIP-T, frozen), fine-tuned on A2D-Sentences
# from the RefCOCO/+/g pre-training. The official DMFormer code has no A2D
# recipe; this is ReferFormer's scripts/dist_train_a2d.sh: 8 GPUs x 2 clips,
# AdamW 1e-4, 6 epochs, lr x0.1 after epochs 3 and 5; the test split is
# evaluated after every epoch (overall/mean IoU, P@0.5:0.9, mAP of
# A2DSentencesMetric). On fewer GPUs add --auto-scale-lr (base batch 16).
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/a2d_sentences.py',
    '../_base_/schedules/schedule_finetune_6e.py',
    '../_base_/default_runtime.py'
]

# The last epoch of the pre-training
# (dmformer_swin-t_4xb2-10e_refcoco-pretrain.py), which holds the GLIP-T
# backbone / text weights too. Training stops at once if it is missing.
load_from = ('work_dirs/dmformer_swin-t_4xb2-10e_refcoco-pretrain/'
             'epoch_10.pth')

# The official fine-tuning deletes the pre-trained class heads
# (`class_embed`) before loading: the new dataset's heads start from their
# initialisation. `drop_keys=[]` keeps them.
default_hooks = dict(
    pretrained_weights=dict(drop_keys=[r'bbox_head\.cls_branches\.']))

train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=16)

train_cfg = dict(val_interval=1)
val_evaluator = dict(type='A2DSentencesMetric')
test_evaluator = val_evaluator
