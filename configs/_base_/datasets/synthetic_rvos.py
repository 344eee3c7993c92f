# The built-in default data: a small dataset in the real Ref-YouTube-VOS
# layout written by tools/dataset_converters/make_synthetic_rvos.py
# (moving, occluding coloured shapes; expressions with swap pairs).
# No photometric distortion: colour words are part of the expressions and
# the distortion's hue jitter / channel permutation would change them.
dataset_type = 'RefYouTubeVOSDataset'
data_root = 'data/synthetic-rvos/'
num_frames = 3

train_pipeline = [
    dict(
        type='RVOSFrameSample',
        num_frames=num_frames,
        max_skip=3,
        mode='train'),
    dict(type='LoadRVOSFrames'),
    dict(type='LoadRVOSAnnotations'),
    # all frames flipped together; 'left' <-> 'right' swapped in the text
    dict(type='VideoRandomFlip', prob=0.5),
    dict(type='VideoRandomResize', scales=[96, 112, 128], max_size=160),
    dict(type='CheckValidFrames'),
    # subject candidates by the part-of-speech rule: spaCy's noun_chunks
    # (the paper configs') lose the subject of many synthetic captions
    dict(type='ExtractNounChunks', method='pos_rule'),
    # exact subject spans written by the generator (subject_labels.json)
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]
test_pipeline = [
    dict(type='RVOSFrameSample', mode='test'),
    dict(type='LoadRVOSFrames'),
    dict(type='VideoRandomResize', scales=[112], max_size=None),
    dict(
        type='LoadRVOSAnnotations',
        skip_unannotated=True,
        skip_absent_object=False),
    dict(type='ExtractNounChunks', method='pos_rule'),
    dict(type='PackRVOSInputs'),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=1,
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
        subject_label_file='auto',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='valid',
        ann_file='meta_expressions/valid/meta_expressions.json',
        exclude_ann_file='meta_expressions/test/meta_expressions.json',
        data_prefix=dict(
            img_path='valid/JPEGImages', ann_path='valid/Annotations'),
        sample_mode='video',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# swap pairs: same words, different referents (`swap_J&F`,
# `swap_pairs_solved` = pairs with J > 0.5 on both sentences)
swap_pairs_file = data_root + 'meta_expressions/valid/swap_pairs.json'
# `subject_acc`: subject phrases chosen by the subject perceptron that are
# exactly the generator's subject span
subject_label_file = data_root + 'meta_expressions/valid/subject_labels.json'
val_evaluator = dict(
    type='RVOSJFMetric',
    swap_pairs_file=swap_pairs_file,
    subject_label_file=subject_label_file)
# tools/test.py: the Ref-YouTube-VOS submission layout (Annotations/<video>/
# <exp_id>/<frame>.png, zipped) plus local J&F, since the split has ground
# truth. tools/test.py writes the files of each run under
# <work-dir>/<timestamp>/RefYTVOSSubmissionMetric/ (next to the run's log).
test_evaluator = dict(
    type='RefYTVOSSubmissionMetric',
    outfile_prefix='work_dirs/synthetic_rvos_submission',
    meta_file=data_root + 'meta_expressions/valid/meta_expressions.json',
    swap_pairs_file=swap_pairs_file,
    subject_label_file=subject_label_file)
