# MeViS data settings (official release layout, see MeViSDataset):
#   data/mevis/{train,valid_u,valid}/JPEGImages/<video>/<frame>.jpg
#   data/mevis/{train,valid_u,valid}/meta_expressions.json
#   data/mevis/{train,valid_u}/mask_dict.json   (COCO RLEs per anno_id)
# Check a download with tools/dataset_converters/check_mevis.py data/mevis.
# An expression may refer to several objects; its target is the union of
# their masks (LoadMeViSAnnotations). Sampling, augmentation and packing are
# the Ref-YouTube-VOS ones: the official MeViS loader of ReferFormer uses the
# same anchors (every num_frames frames) and transforms.
_base_ = './ref_youtube_vos.py'

dataset_type = 'MeViSDataset'
data_root = 'data/mevis/'
backend_args = None

train_pipeline = [
    dict(type='RVOSFrameSample', num_frames=5, max_skip=3, mode='train'),
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    # union of the masks of the expression's objects
    dict(type='LoadMeViSAnnotations', backend_args=backend_args),
    dict(type='VideoRandomFlip', prob=0.5),
    dict(type='VideoPhotoMetricDistortion'),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='VideoRandomResize',
                    scales={{_base_.train_scales}},
                    max_size=640)
            ],
            [
                dict(type='VideoRandomResize', scales=[400, 500, 600]),
                dict(type='VideoRandomSizeCrop', min_size=384, max_size=600),
                dict(
                    type='VideoRandomResize',
                    scales={{_base_.train_scales}},
                    max_size=640),
            ],
        ]),
    dict(type='CheckValidFrames'),
    dict(type='ExtractNounChunks'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]

test_pipeline = [
    dict(type='RVOSFrameSample', mode='test'),
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    dict(type='VideoRandomResize', scales=[360], max_size=None),
    # ground truth (valid_u) at the original resolution; none for 'valid'
    dict(
        type='LoadMeViSAnnotations',
        skip_unannotated=True,
        backend_args=backend_args),
    dict(type='ExtractNounChunks'),
    dict(type='PackRVOSInputs'),
]

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='train',  # train/meta_expressions.json + train/mask_dict.json
        anchor_stride=5,
        subject_label_file='auto',
        pipeline=train_pipeline,
        backend_args=backend_args))

# valid_u: the split with public ground truth, scored locally
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='valid_u',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# J&F of the union masks, mean over expressions (official MeViS script)
val_evaluator = dict(type='RVOSJFMetric', prefix='mevis')
test_evaluator = val_evaluator
