# A2D-Sentences data settings, ReferFormer protocol (datasets/a2d.py): one
# annotated frame per sample; a clip of num_frames frames around it, ground
# truth on the annotated frame only, whose clip position is packed as
# metainfo 'valid_indices' (used by the model and by A2DSentencesMetric).
# Prepare the data with tools/dataset_converters/a2d_sentences_to_json.py
# (sample lists + frames extracted from Release/clips320H/*.mp4).
dataset_type = 'A2DSentencesDataset'
data_root = 'data/a2d_sentences/'
backend_args = None

num_frames = 5
# short sides of the multi-scale resize (long side at most 640)
train_scales = [288, 320, 352, 392, 416, 448, 480, 512]
# PackRVOSInputs.DEFAULT_META_KEYS + the annotated frame positions
meta_keys = ('video_id', 'exp_id', 'obj_id', 'text', 'noun_chunks',
             'frame_ids', 'img_paths', 'ori_shape', 'img_shape',
             'scale_factor', 'flip', 'flip_direction', 'subject_source',
             'valid_indices')

train_pipeline = [
    # annotated frame + 2 local frames within max_skip + 2 global frames
    dict(
        type='A2DFrameSample', num_frames=num_frames, max_skip=3,
        mode='train'),
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    # the annotated frame's mask; zero masks (valid=False) elsewhere
    dict(type='LoadA2DAnnotations', backend_args=backend_args),
    dict(type='VideoRandomFlip', prob=0.5),
    dict(type='VideoPhotoMetricDistortion'),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='VideoRandomResize',
                    scales=train_scales,
                    max_size=640)
            ],
            [
                dict(type='VideoRandomResize', scales=[400, 500, 600]),
                dict(type='VideoRandomSizeCrop', min_size=384, max_size=600),
                dict(
                    type='VideoRandomResize',
                    scales=train_scales,
                    max_size=640),
            ],
        ]),
    # resample when the crop removed the annotated object
    dict(type='CheckValidFrames'),
    dict(type='ExtractNounChunks'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs', meta_keys=meta_keys),
]

test_pipeline = [
    # window [f - T // 2, f + (T + 1) // 2) around the annotated frame f
    dict(type='A2DFrameSample', num_frames=num_frames, mode='test'),
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    # official val transform: RandomResize([360], max_size=640)
    dict(type='VideoRandomResize', scales=[360], max_size=640),
    # ground truth at the original resolution (loaded after the resize)
    dict(type='LoadA2DAnnotations', backend_args=backend_args),
    dict(type='ExtractNounChunks'),
    dict(type='PackRVOSInputs', meta_keys=meta_keys),
]

train_dataloader = dict(
    # DMFormer needs the same valid_indices for all clips of a batch
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        ann_file='a2d_sentences_single_frame_train_annotations.json',
        data_prefix=dict(
            img_path='Release/frames',
            ann_path='text_annotations/a2d_annotation_with_instances'),
        img_suffix='.jpg',
        subject_label_file='auto',
        pipeline=train_pipeline,
        backend_args=backend_args))

val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        ann_file='a2d_sentences_single_frame_test_annotations.json',
        data_prefix=dict(
            img_path='Release/frames',
            ann_path='text_annotations/a2d_annotation_with_instances'),
        img_suffix='.jpg',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# overall/mean IoU, P@0.5:0.9 and COCO mask AP on the annotated frames
val_evaluator = dict(type='A2DSentencesMetric')
test_evaluator = val_evaluator
