# RefCOCO / RefCOCO+ / RefCOCOg image pre-training with the
# MDETR-format annotations used by ReferFormer:
#   data/coco/train2014/COCO_train2014_*.jpg
#   data/coco/{refcoco,refcoco+,refcocog}/instances_<name>_{train,val}.json
# Images are one-frame clips in the dict-of-lists convention of
# dmformer/datasets/transforms/loading.py, so the video packing applies.
dataset_type = 'RefCOCODataset'
data_root = 'data/coco/'
backend_args = None

# official image recipe (ReferFormer datasets/refexp.py, T = 1)
image_scales = [480, 512, 544, 576, 608, 640, 672, 704, 736, 768]
crop_final_scales = [296, 328, 360, 392, 416, 448, 480, 512]

train_pipeline = [
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    dict(type='LoadRefCOCOAnnotations'),
    # swaps 'left' <-> 'right' in the caption
    dict(type='VideoRandomFlip', prob=0.5),
    dict(
        type='mmcv.RandomChoice',  # RandomSelect, p = 0.5 each
        prob=[0.5, 0.5],
        transforms=[
            [
                dict(
                    type='VideoRandomResize',
                    scales=image_scales,
                    max_size=800)
            ],
            [
                dict(type='VideoRandomResize', scales=[400, 500, 600]),
                dict(type='VideoRandomSizeCrop', min_size=384, max_size=600),
                dict(
                    type='VideoRandomResize',
                    scales=crop_final_scales,
                    max_size=640),
            ],
        ]),
    # None (resample) if the crop removed the object
    dict(type='CheckValidFrames'),
    # text transforms after the flip (character spans of the final text)
    dict(type='ExtractNounChunks'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]

# RefCOCO as pseudo videos (ReferFormer refexp2seq.py): the image and
# num_frames - 1 warped copies, then the Ref-YouTube-VOS video recipe.
num_frames = 5
video_scales = [288, 320, 352, 392, 416, 448, 480, 512]
pseudo_video_train_pipeline = [
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    dict(type='LoadRefCOCOAnnotations'),
    dict(
        type='ImageToPseudoVideo',
        num_frames=num_frames,
        rotate=20.,
        translate=0.1,
        perspective=0.08,
        brightness_delta=40,
        hue_sat_delta=5,
        motion_blur_prob=0.25,
        motion_blur_kernel_sizes=(9, 11)),
    dict(type='VideoRandomFlip', prob=0.5),
    dict(type='VideoPhotoMetricDistortion'),  # drawn per frame
    dict(
        type='mmcv.RandomChoice',
        prob=[0.5, 0.5],
        transforms=[
            [
                dict(
                    type='VideoRandomResize',
                    scales=video_scales,
                    max_size=640)
            ],
            [
                dict(type='VideoRandomResize', scales=[400, 500, 600]),
                dict(type='VideoRandomSizeCrop', min_size=384, max_size=600),
                dict(
                    type='VideoRandomResize',
                    scales=video_scales,
                    max_size=640),
            ],
        ]),
    dict(type='CheckValidFrames'),
    dict(type='ExtractNounChunks'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]

test_pipeline = [
    dict(type='LoadRVOSFrames', backend_args=backend_args),
    # official val transform: RandomResize([360], max_size=640)
    dict(type='VideoRandomResize', scales=[360], max_size=640),
    # ground truth at the original resolution (loaded after the resize)
    dict(type='LoadRefCOCOAnnotations'),
    dict(type='ExtractNounChunks'),
    dict(type='PackRVOSInputs'),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        # --dataset_file all: RefCOCO + RefCOCO+ + RefCOCOg
        type='ConcatDataset',
        datasets=[
            dict(
                type=dataset_type,
                data_root=data_root,
                ann_file='refcoco/instances_refcoco_train.json',
                data_prefix=dict(img_path='train2014/'),
                pipeline=train_pipeline,
                backend_args=backend_args),
            dict(
                type=dataset_type,
                data_root=data_root,
                ann_file='refcoco+/instances_refcoco+_train.json',
                data_prefix=dict(img_path='train2014/'),
                pipeline=train_pipeline,
                backend_args=backend_args),
            dict(
                type=dataset_type,
                data_root=data_root,
                ann_file='refcocog/instances_refcocog_train.json',
                data_prefix=dict(img_path='train2014/'),
                pipeline=train_pipeline,
                backend_args=backend_args),
        ]))

val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='refcoco/instances_refcoco_val.json',
        data_prefix=dict(img_path='train2014/'),
        pipeline=test_pipeline,
        test_mode=True,
        backend_args=backend_args))
test_dataloader = val_dataloader

# cIoU / mIoU / P@t of the masks (T = 1)
val_evaluator = dict(type='RefCOCOMetric')
test_evaluator = val_evaluator
