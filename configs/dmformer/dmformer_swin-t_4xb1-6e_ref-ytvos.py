# DMFormer, Swin-T + BERT-base (GLIP-T, frozen), fine-tuned on
# Ref-YouTube-VOS from the RefCOCO/+/g pre-training (official README):
# 6 epochs, lr x0.1 after epochs 3 and 5, AdamW 1e-4, wd 5e-4, clip 0.1,
# backbone lr 5e-5, text encoder lr 1e-5 (both frozen by default).
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/ref_youtube_vos.py',
    '../_base_/schedules/schedule_finetune_6e.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/ref-youtube-vos/'

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

# The valid split has no public ground truth: no validation while training.
val_dataloader = None
val_cfg = None
val_evaluator = None
train_cfg = dict(val_interval=1000)

# Codalab-style submission: Annotations/<video>/<exp_id>/<frame>.png zipped,
# one PNG per listed frame of the 202 valid videos (valid minus the test
# videos); J&F are also printed when valid/Annotations is present.
test_evaluator = dict(
    type='RefYTVOSSubmissionMetric',
    outfile_prefix=(
        'work_dirs/dmformer_swin-t_4xb1-6e_ref-ytvos/ref-ytvos-valid'),
    meta_file=data_root + 'meta_expressions/valid/meta_expressions.json',
    exclude_meta_file=data_root +
    'meta_expressions/test/meta_expressions.json')
