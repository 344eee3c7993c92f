# Zero-shot Ref-DAVIS17 test of the Ref-YouTube-VOS model (the protocol of
# ReferFormer's inference_davis.py): all 4 expression sets (2 annotators x
# first-frame / full-video) are run; for every video and annotator the
# objects are merged by argmax over a 0.1 background and their mask
# probabilities (zeroed below 0.5), written as palette PNGs
# <work_dir>/<timestamp>/RefDAVISMetric/anno_{a}/ and scored with the
# DAVIS-2017 J&F; each annotator and the mean are reported.
# Usage: python tools/test.py THIS_CONFIG REF_YTVOS_CKPT
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/ref_davis.py', '../_base_/default_runtime.py'
]
data_root = 'data/ref-davis/'
model = dict(bbox_head=dict(test_cfg=dict(return_mask_probs=True)))

test_dataloader = dict(dataset=dict(annotator=None))  # all 4 annotators
test_evaluator = dict(
    type='RefDAVISMetric',
    outfile_prefix='work_dirs/ref-davis',  # test.py: <work_dir>/<timestamp>/..
    gt_root=data_root + 'valid/Annotations')
test_cfg = dict(type='TestLoop')
