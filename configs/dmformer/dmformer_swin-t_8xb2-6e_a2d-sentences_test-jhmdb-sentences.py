# DMFormer on JHMDB-Sentences: evaluation only, with the model trained on
# A2D-Sentences (dmformer_swin-t_8xb2-6e_a2d-sentences.py), as ReferFormer:
#   python tools/test.py THIS_CONFIG \
#       work_dirs/dmformer_swin-t_8xb2-6e_a2d-sentences/epoch_6.pth
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/jhmdb_sentences.py', '../_base_/default_runtime.py'
]

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='A2DSentencesMetric')
test_evaluator = val_evaluator
