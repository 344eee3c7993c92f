# The tiny DMFormer on the built-in synthetic data written in the MeViS
# layout (make_synthetic_rvos.py --layout mevis): besides the single-object
# expressions and swap pairs of the default data, expressions that refer to
# several objects ("the two red shapes moving right") and motion-only ones
# ("the shape going up"); their target is the union of the objects' masks.
# As the MeViS baselines start from a Ref-YouTube-VOS model, this fine-tunes
# the main job's checkpoint (tools/quickstart.sh) for 350 iterations:
#   python tools/dataset_converters/make_synthetic_rvos.py --layout mevis \
#       --out data/synthetic-mevis
#   python tools/train.py configs/dmformer/dmformer_tiny_synthetic-mevis.py
#   python tools/test.py configs/dmformer/dmformer_tiny_synthetic-mevis.py \
#       work_dirs/dmformer_tiny_synthetic-mevis/iter_350.pth
# Train from scratch instead with --cfg-options load_from=None
# train_cfg.max_iters=1050 (and the milestones of param_scheduler).
_base_ = './dmformer_tiny_synthetic.py'

dataset_type = 'MeViSDataset'
data_root = 'data/synthetic-mevis/'
load_from = 'work_dirs/quickstart/iter_1050.pth'

train_pipeline = [
    dict(type='RVOSFrameSample', num_frames=3, max_skip=3, mode='train'),
    dict(type='LoadRVOSFrames'),
    # union of the masks of the expression's objects (mask_dict.json)
    dict(type='LoadMeViSAnnotations'),
    dict(type='VideoRandomFlip', prob=0.5),
    dict(type='VideoRandomResize', scales=[96, 112, 128], max_size=160),
    dict(type='CheckValidFrames'),
    dict(type='ExtractNounChunks', method='pos_rule'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = [
    dict(type='RVOSFrameSample', mode='test'),
    dict(type='LoadRVOSFrames'),
    dict(type='VideoRandomResize', scales=[112], max_size=None),
    dict(type='LoadMeViSAnnotations', skip_unannotated=True),
    dict(type='ExtractNounChunks', method='pos_rule'),
    dict(type='PackRVOSInputs'),
]

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='train',
        anchor_stride=3,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='valid_u',  # the split with ground truth
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

swap_pairs_file = data_root + 'valid_u/swap_pairs.json'
subject_label_file = data_root + 'valid_u/subject_labels.json'
val_evaluator = dict(
    _delete_=True,
    type='RVOSJFMetric',
    prefix='mevis',
    swap_pairs_file=swap_pairs_file,
    subject_label_file=subject_label_file)
# J&F of valid_u and its submission zip; the split without ground truth:
# dmformer_tiny_synthetic-mevis-valid.py
test_evaluator = dict(
    _delete_=True,
    type='MeViSSubmissionMetric',
    outfile_prefix='work_dirs/synthetic_mevis_submission',
    meta_file=data_root + 'valid_u/meta_expressions.json',
    swap_pairs_file=swap_pairs_file,
    subject_label_file=subject_label_file)

# fine-tuning schedule: 350 iterations at a fifth of the from-scratch lr
# (at 1e-3 the single-object expressions got worse), warm-up 50, x0.1 at 80%
max_iters = 350
optim_wrapper = dict(optimizer=dict(lr=2e-4))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters))
