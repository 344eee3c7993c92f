# DMFormer, Swin-T + BERT-base (GLIP-T, frozen), fine-tuned on A2D-Sentences
# from the RefCOCO/+/g pre-training, as ReferFormer's
# scripts/dist_train_a2d.sh: 6 epochs, lr x0.1 after epochs 3 and 5; the
# test split is evaluated after every epoch (overall/mean IoU, P@0.5:0.9,
# mAP of A2DSentencesMetric).
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/a2d_sentences.py',
    '../_base_/schedules/schedule_finetune_6e.py',
    '../_base_/default_runtime.py'
]

# The pre-training checkpoint
# (dmformer_swin-t_4xb2-10e_refcoco-pretrain.py); the GLIP-T backbone/text
# weights come with it (tools/model_converters/).
load_from = None

train_cfg = dict(val_interval=1)
val_evaluator = dict(type='A2DSentencesMetric')
test_evaluator = val_evaluator
