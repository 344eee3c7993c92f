# Ref-YouTube-VOS data settings (the official datasets/ytvos.py train
# loader and inference_ytvos.py).
# Frames travel as a dict of lists (per-frame keys are lists of length T,
# video-level keys such as 'text' are scalars; see the docstring of
# dmformer/datasets/transforms/loading.py). VideoRandomResize and
# VideoRandomSizeCrop are mmcv's RandomChoiceResize + mmdet's Resize and
# mmdet's RandomCrop wrapped in mmcv's TransformBroadcaster with shared random
# parameters, so every frame of a clip gets the same resize and crop.
dataset_type = 'RefYouTubeVOSDataset'
data_root = 'data/ref-youtube-vos/'
backend_args = None

num_frames = 5
# short sides of the multi-scale resize (long side at most 640)
train_scales = [288, 320, 352, 392, 416, 448, 480, 512]

train_pipeline = [
    # anchor + 2 local frames within max_skip + 2 global frames, sorted
    dict(
        type='RVOSFrameSample',
        num_frames=num_frames,
        max_skip=3,
        mode='train'),
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    dict(type='LoadRVOSAnnotations', backend_args=backend_args),
    # all frames flipped together; swaps 'left' <-> 'right' in the text
    dict(type='VideoRandomFlip', prob=0.5),
    # drawn independently for every frame (as the official code)
    dict(type='VideoPhotoMetricDistortion'),
    dict(
        type='RandomChoice',  # mmcv, one branch per clip, p = 0.5 each
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
    # valid = positive box area (and mask pixels); resample if none is valid
    dict(type='CheckValidFrames'),
    # text transforms after the flip: character spans of the final text
    dict(type='ExtractNounChunks'),
    # stored teacher label if any, else the first noun chunk
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]

test_pipeline = [
    dict(type='RVOSFrameSample', mode='test'),  # all frames of the video
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    # short side 360, long side unbounded (official T.Resize(360), which
    # resizes PIL images: backend='pillow' for its antialiased bilinear)
    dict(
        type='VideoRandomResize', scales=[360], max_size=None,
        backend='cv2'),
    # ground truth at the original resolution (loaded after the resize), only
    # where the split has annotations (local scoring); an object in no mask
    # is an error here (training skips it, as the official loader)
    dict(
        type='LoadRVOSAnnotations',
        skip_unannotated=True,
        skip_absent_object=False,
        backend_args=backend_args),
    dict(type='ExtractNounChunks'),
    dict(type='PackRVOSInputs'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        ann_file='meta_expressions/train/meta_expressions.json',
        data_prefix=dict(
            img_path='train/JPEGImages', ann_path='train/Annotations'),
        meta_file='train/meta.json',
        sample_mode='anchor',
        anchor_stride=num_frames,
        # teacher labels beside the expressions if present, else the first
        # noun chunk (LoadSubjectSpan)
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
        # the 202 valid videos = meta_expressions/valid minus /test
        split='valid',
        ann_file='meta_expressions/valid/meta_expressions.json',
        exclude_ann_file='meta_expressions/test/meta_expressions.json',
        expected_num_videos=202,
        data_prefix=dict(
            img_path='valid/JPEGImages', ann_path='valid/Annotations'),
        sample_mode='video',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
# The evaluators (J&F for local scoring, the Codalab submission writer) are
# set by the model configs, next to the metric they use.
