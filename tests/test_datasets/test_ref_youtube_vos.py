# Copyright (c) OpenMMLab. All rights reserved.
import json
import logging
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from ytvos_fixture import (FRAME_VALUE_STEP, H, W, frame_name, index_map,
                           obj1_box, obj2_present, write_frame, write_json,
                           write_png, write_ytvos)

from dmformer.datasets import RefYouTubeVOSDataset
from dmformer.structures.rvos_data_sample import RVOSDataSample

TRAIN_PIPELINE = [
    dict(type='RVOSFrameSample', num_frames=5, max_skip=3),
    dict(type='LoadRVOSFrames'),
    dict(type='LoadRVOSAnnotations'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]
TEST_PIPELINE = [
    dict(type='RVOSFrameSample', mode='test'),
    dict(type='LoadRVOSFrames'),
    dict(type='LoadRVOSAnnotations', skip_unannotated=True),
    dict(type='PackRVOSInputs'),
]


@pytest.fixture(autouse=True)
def default_scope():
    init_default_scope('dmformer')


@pytest.fixture
def root(tmp_path):
    write_ytvos(str(tmp_path))
    return str(tmp_path)


def build(root, **kwargs):
    kwargs.setdefault('pipeline', TRAIN_PIPELINE)
    return RefYouTubeVOSDataset(data_root=root, **kwargs)


def frame_index(img_bgr: torch.Tensor) -> int:
    """Recover the frame index written by the fixture from its blue value."""
    return int(round(img_bgr[0].float().mean().item() / FRAME_VALUE_STEP))


def test_train_data_list(root):
    dataset = build(root)
    # vidA: 12 frames -> anchors 0, 5, 10 for 2 expressions; vidB: 1 anchor
    assert len(dataset) == 3 * 2 + 1
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [(i['video_id'], i['exp_id'], i['anchor_idx'])
            for i in infos] == [('vidA', '0', 0), ('vidA', '0', 5),
                                ('vidA', '0', 10), ('vidA', '1', 0),
                                ('vidA', '1', 5), ('vidA', '1', 10),
                                ('vidB', '0', 0)]
    info = infos[0]
    assert info['text'] == 'the man on the left'  # cleaned
    assert info['obj_id'] == 1 and info['category'] == 'person'
    assert info['video_frame_ids'] == [frame_name(k) for k in range(12)]
    assert info['img_dir'] == osp.join(root, 'train/JPEGImages/vidA')
    assert info['ann_dir'] == osp.join(root, 'train/Annotations/vidA')
    assert info['subject_span'] is None


def test_anchor_stride(root):
    dataset = build(root, anchor_stride=4)
    anchors = [
        dataset.get_data_info(i)['anchor_idx'] for i in range(len(dataset))
        if dataset.get_data_info(i)['video_id'] == 'vidA'
    ]
    assert anchors == [0, 4, 8, 0, 4, 8]


def test_lazy_init_and_no_image_io(root):
    # remove every frame of vidA: building the data list must not read them
    img_dir = osp.join(root, 'train/JPEGImages/vidA')
    for name in os.listdir(img_dir):
        os.remove(osp.join(img_dir, name))
    dataset = build(root, lazy_init=True)
    assert not dataset._fully_initialized
    dataset.full_init()
    assert len(dataset) == 7
    # ... but loading a sample names the missing frame
    with pytest.raises(FileNotFoundError, match=r'00000\.jpg'):
        dataset[0]


def test_train_sample(root):
    dataset = build(root)
    for idx, anchor in [(0, 0), (1, 5), (2, 10)]:
        out = dataset[idx]
        inputs, sample = out['inputs'], out['data_samples']
        assert isinstance(sample, RVOSDataSample)
        assert inputs.shape == (5, 3, H, W) and inputs.dtype == torch.uint8
        # frames come in temporal order and are the ones named in metainfo
        ks = [frame_index(img) for img in inputs]
        assert ks == sorted(ks)
        assert sample.frame_ids == [frame_name(k) for k in ks]
        assert anchor in ks
        # local frames within max_skip=3 on both sides (unless at a border)
        if anchor > 0:
            assert any(anchor - 3 <= k < anchor for k in ks)
        if anchor < 11:
            assert any(anchor < k <= anchor + 3 for k in ks)
        gt = sample.gt_instances
        assert gt.masks.shape == (5, H, W) and gt.masks.dtype == torch.bool
        for t, k in enumerate(ks):
            expected = torch.from_numpy(index_map(k) == 1)
            assert torch.equal(gt.masks[t], expected)
            assert gt.bboxes[t].tolist() == list(map(float, obj1_box(k)))
        assert gt.valid.all()
        assert sample.video_id == 'vidA' and sample.exp_id == '0'
        assert sample.obj_id == 1 and sample.text == 'the man on the left'
        assert sample.ori_shape == (H, W) and sample.img_shape == (H, W)
        assert len(sample.img_paths) == 5
        # parser fallback: first noun chunk 'the man'
        assert sample.gt_subject_span.tolist() == [0, 7]
        assert sample.gt_subject_span.dtype == torch.long
        assert sample.subject_source == 'parser'


def test_absent_frames_are_invalid(root):
    dataset = build(root)
    # expression '1' refers to object 2, visible in frames 4..7 only
    out = dataset[3]  # vidA, exp '1', anchor 0
    sample = out['data_samples']
    ks = [frame_index(img) for img in out['inputs']]
    gt = sample.gt_instances
    for t, k in enumerate(ks):
        assert bool(gt.valid[t]) == obj2_present(k)
        if not obj2_present(k):
            assert not gt.masks[t].any()
            assert gt.bboxes[t].tolist() == [0, 0, 0, 0]
        else:
            assert gt.bboxes[t].tolist() == [20, 14, 30, 20]


def test_valid_split_minus_test(root):
    dataset = build(root, split='valid', pipeline=TEST_PIPELINE)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    # v3/v4 are test videos: valid = valid - test
    assert sorted({i['video_id'] for i in infos}) == ['v1', 'v2']
    assert len(infos) == 4  # one sample per (video, expression)
    assert all(i['anchor_idx'] is None for i in infos)
    # no valid/Annotations: no ground truth, obj_id unknown
    assert all(i['ann_dir'] is None and i['obj_id'] == -1 for i in infos)
    out = dataset[0]
    assert out['inputs'].shape == (4, 3, H, W)
    assert [frame_index(img) for img in out['inputs']] == [0, 1, 2, 3]
    assert 'gt_instances' not in out['data_samples']
    assert out['data_samples'].frame_ids == [frame_name(k) for k in range(4)]
    # the 202-style check on the number of kept videos
    build(root, split='valid', expected_num_videos=2)
    with pytest.raises(ValueError, match='expected 3 videos'):
        build(root, split='valid', expected_num_videos=3)


def test_valid_split_with_local_annotations(tmp_path):
    write_ytvos(str(tmp_path), with_valid_ann=True)
    dataset = build(str(tmp_path), split='valid', pipeline=TEST_PIPELINE)
    sample = dataset[0]['data_samples']
    gt = sample.gt_instances
    assert gt.masks.shape == (4, H, W)
    assert torch.equal(gt.masks[2], torch.from_numpy(index_map(2) == 1))


def test_test_split(root):
    dataset = build(root, split='test', pipeline=TEST_PIPELINE)
    assert sorted(
        {dataset.get_data_info(i)['video_id']
         for i in range(len(dataset))}) == ['v3', 'v4']
    assert dataset.get_data_info(0)['img_dir'] == osp.join(
        root, 'valid/JPEGImages/v3')


def test_subject_labels(root, monkeypatch):
    labels_path = osp.join(root, 'meta_expressions/train/subject_labels.json')
    write_json(labels_path, {'vidA': {'0': [15, 19]}})  # 'left'
    messages = []

    class FakeLogger:

        def info(self, msg):
            messages.append(msg)

        def log(self, level, msg):
            messages.append(msg)

    monkeypatch.setattr(MMLogger, 'get_current_instance',
                        classmethod(lambda cls: FakeLogger()))
    dataset = build(root)
    assert any('1/3 expressions' in m and 'teacher' in m and labels_path in m
               for m in messages)
    assert dataset.get_data_info(0)['subject_span'] == [15, 19]
    sample = dataset[0]['data_samples']
    assert sample.gt_subject_span.tolist() == [15, 19]
    assert sample.subject_source == 'teacher'
    # expressions without a stored label use the parser fallback
    sample = dataset[6]['data_samples']  # vidB 'a red car'
    assert sample.gt_subject_span.tolist() == [0, 9]
    assert sample.subject_source == 'parser'

    messages.clear()
    build(root, subject_label_file=None)
    assert any('no subject label file' in m for m in messages)

    write_json(labels_path, {'vidA': {'0': [15, 40]}})
    with pytest.raises(ValueError, match="video 'vidA', expression '0'"):
        build(root)


# ---------------------------------------------------------------------------
# malformed inputs
# ---------------------------------------------------------------------------
def _rewrite_expressions(root, fn):
    path = osp.join(root, 'meta_expressions/train/meta_expressions.json')
    with open(path) as f:
        content = json.load(f)
    fn(content['videos'])
    write_json(path, content)


def test_error_empty_caption(root):
    _rewrite_expressions(
        root, lambda v: v['vidA']['expressions']['1'].update(exp='  \t '))
    with pytest.raises(
            ValueError, match="video 'vidA', expression '1'.*"
            'empty'):
        build(root)


def test_error_unknown_obj_id_in_meta(root):
    _rewrite_expressions(
        root, lambda v: v['vidA']['expressions']['1'].update(obj_id='7'))
    with pytest.raises(ValueError, match="expression '1' refers to obj_id 7"):
        build(root)


def test_error_video_missing(root):
    # in the expressions but not in meta.json
    def add_video(videos):
        videos['ghost'] = dict(
            expressions={'0': dict(exp='x', obj_id='1')}, frames=['00000'])

    _rewrite_expressions(root, add_video)
    with pytest.raises(ValueError, match="video 'ghost'.*meta.json"):
        build(root)
    # in meta.json but without a frame folder
    meta_path = osp.join(root, 'train/meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    meta['videos']['ghost'] = {'objects': {'1': {'category': 'x'}}}
    write_json(meta_path, meta)
    with pytest.raises(FileNotFoundError, match="video 'ghost'"):
        build(root)


def test_error_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='meta_expressions.json'):
        build(str(tmp_path))
    write_ytvos(str(tmp_path))
    os.remove(osp.join(str(tmp_path), 'train/meta.json'))
    with pytest.raises(FileNotFoundError, match='meta.json'):
        build(str(tmp_path))


def test_error_object_absent_from_every_mask(root):
    # object 3 is declared in meta.json but drawn in no mask of vidB: an
    # error where absent objects are not skipped (evaluation pipelines)
    meta_path = osp.join(root, 'train/meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    meta['videos']['vidB']['objects']['3'] = {'category': 'ghost'}
    write_json(meta_path, meta)
    _rewrite_expressions(
        root, lambda v: v['vidB']['expressions']['0'].update(obj_id='3'))
    pipeline = [dict(t) for t in TRAIN_PIPELINE]
    pipeline[2] = dict(type='LoadRVOSAnnotations', skip_absent_object=False)
    dataset = build(root, pipeline=pipeline)
    with pytest.raises(ValueError, match="Object 3.*video 'vidB'"):
        dataset[6]


def test_error_mask_size_mismatch(root):
    ann = osp.join(root, 'train/Annotations/vidB', frame_name(1) + '.png')
    write_png(ann, np.zeros((H + 2, W), dtype=np.uint8))
    dataset = build(root, pipeline=TEST_PIPELINE, sample_mode='video')
    with pytest.raises(ValueError, match=r'00005\.png.*size'):
        dataset[2]  # vidB


def test_error_corrupt_frame(root):
    path = osp.join(root, 'train/JPEGImages/vidB', frame_name(2) + '.jpg')
    with open(path, 'wb') as f:
        f.write(b'not a jpeg at all')
    dataset = build(root, pipeline=TEST_PIPELINE, sample_mode='video')
    with pytest.raises(ValueError, match=r'00010\.jpg.*corrupt'):
        dataset[2]


def test_error_frame_size_mismatch(root):
    path = osp.join(root, 'train/JPEGImages/vidB', frame_name(1) + '.jpg')
    write_frame(path, 1, size=(H, W + 4))
    dataset = build(root, pipeline=TEST_PIPELINE, sample_mode='video')
    with pytest.raises(ValueError, match=r'00005\.jpg.*size'):
        dataset[2]


def test_bad_arguments(root):
    with pytest.raises(ValueError, match='split'):
        build(root, split='val')
    with pytest.raises(ValueError, match='sample_mode'):
        build(root, sample_mode='clip')


# ---------------------------------------------------------------------------
# the pipelines of configs/_base_/datasets/ref_youtube_vos.py
# ---------------------------------------------------------------------------
CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'configs/_base_/datasets/ref_youtube_vos.py')


def test_config_train_pipeline(root):
    from mmengine import Config
    from mmengine.registry import DATASETS
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = root
    dataset = DATASETS.build(dataset_cfg)
    assert isinstance(dataset, RefYouTubeVOSDataset) and len(dataset) == 7
    # the long side is capped at 640: a 24x32 frame with short side 512
    # becomes 480x640
    short_sides = set(cfg.train_scales) - {512} | {480}
    np.random.seed(0)
    for idx in (0, 1, 2, 5):
        out = dataset[idx]
        inputs, sample = out['inputs'], out['data_samples']
        t, c, h, w = inputs.shape
        assert (t, c) == (5, 3) and inputs.dtype == torch.uint8
        assert min(h, w) in short_sides and max(h, w) <= 640
        gt = sample.gt_instances
        assert gt.masks.shape == (5, h, w) and gt.valid.any()
        # boxes follow the (resized / cropped) masks up to interpolation
        for mask, box, valid in zip(gt.masks, gt.bboxes, gt.valid):
            if valid:
                ys, xs = mask.nonzero(as_tuple=True)
                tight = torch.stack(
                    [xs.min(), ys.min(),
                     xs.max() + 1,
                     ys.max() + 1])
                assert (box - tight).abs().max() <= 3
            else:
                assert box.abs().sum() == 0
        assert sample.text in ('the man on the left', 'the man on the right',
                               'a dog')
        start, end = sample.gt_subject_span.tolist()
        assert sample.text[start:end] in ('the man', 'a dog')
        assert sample.noun_chunks[0] == (start, end)


def test_config_test_pipeline(tmp_path):
    from mmengine import Config
    from mmengine.registry import DATASETS
    write_ytvos(str(tmp_path), with_valid_ann=True)
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path)
    dataset_cfg.expected_num_videos = 2  # 202 on the real data
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 4
    sample = dataset[0]['data_samples']
    assert dataset[0]['inputs'].shape == (4, 3, 360, 480)
    assert sample.img_shape == (360, 480) and sample.ori_shape == (H, W)
    # ground truth stays at the original resolution
    assert sample.gt_instances.masks.shape == (4, H, W)
    with pytest.raises(ValueError, match='expected 202 videos'):
        dataset_cfg.expected_num_videos = 202
        DATASETS.build(dataset_cfg)


def test_video_expressions_and_id_maps(root):
    """``with_video_expressions`` + ``with_seg_map``: every sample carries
    all expressions of its video and the whole object-id maps, which a
    flip mirrors (and whose captions swap left/right) and a resize scales
    with nearest-neighbour labels."""
    assert 'video_expressions' not in build(root).get_data_info(0)
    pipeline = [
        dict(type='RVOSFrameSample', num_frames=2, max_skip=3),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadRVOSAnnotations', with_seg_map=True),
        dict(type='VideoRandomFlip', prob=1.0),
        dict(type='VideoRandomResize', scales=[2 * H], max_size=None),
        dict(type='PackRVOSInputs'),
    ]
    dataset = build(root, with_video_expressions=True, pipeline=pipeline)
    expected = [dict(text='the man on the left', obj_id=1),
                dict(text='a dog', obj_id=2)]
    assert dataset.get_data_info(0)['video_expressions'] == expected
    assert dataset.get_data_info(6)['video_expressions'] == [
        dict(text='a red car', obj_id=1)]
    sample = dataset[0]['data_samples']
    assert sample.video_expressions == [
        dict(text='the man on the right', obj_id=1),
        dict(text='a dog', obj_id=2)]
    id_maps = sample.gt_instances.id_maps
    assert id_maps.shape == (2, 2 * H, 2 * W) and id_maps.dtype == torch.uint8
    for t, name in enumerate(sample.frame_ids):
        ids = index_map(int(name) // 5)[:, ::-1].repeat(2, 0).repeat(2, 1)
        assert torch.equal(id_maps[t], torch.from_numpy(ids.copy()))
        assert torch.equal(sample.gt_instances.masks[t], id_maps[t] == 1)


def test_object_categories(root, tmp_path):
    """``with_object_categories``: every sample carries the category of
    every object of its video from ``meta.json``, packed into the
    metainfo; a meta file without categories, or no meta file, is
    refused with a message naming the problem."""
    assert 'object_categories' not in build(root).get_data_info(0)
    dataset = build(root, with_object_categories=True)
    assert dataset.get_data_info(0)['object_categories'] == {
        1: 'person',
        2: 'dog'
    }
    assert dataset.get_data_info(6)['object_categories'] == {1: 'car'}
    assert dataset[0]['data_samples'].object_categories == {
        1: 'person',
        2: 'dog'
    }
    with pytest.raises(ValueError, match='needs a meta_file'):
        build(root, with_object_categories=True, meta_file=None)
    meta = osp.join(root, 'train', 'meta.json')
    with open(meta) as f:
        content = json.load(f)
    del content['videos']['vidB']['objects']['1']['category']
    with open(meta, 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match="vidB.*object '1' has no"):
        build(root, with_object_categories=True)


def test_object_in_no_mask_is_left_out_of_training(root):
    """An expression whose object appears in no frame (an empty ``frames``
    list in meta.json) is dropped from training at load time with one
    warning giving the count, as the official loader skips it; evaluation
    keeps it. Without that list, the sample is skipped when drawn."""
    meta_path = osp.join(root, 'train', 'meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    names = [frame_name(k) for k in range(12)]
    meta['videos']['vidA']['objects']['1']['frames'] = names
    meta['videos']['vidA']['objects']['2']['frames'] = []
    write_json(meta_path, meta)
    messages = []
    logger = MMLogger.get_current_instance()
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        dataset = build(root, meta_file='train/meta.json')
    finally:
        logger.removeHandler(handler)
    # vidA keeps expression 0 only (3 anchors), vidB its one expression
    assert {(d['video_id'], d['exp_id'])
            for d in dataset.load_data_list()} == {('vidA', '0'),
                                                   ('vidB', '0')}
    assert len(dataset) == 3 + 1
    warned = [m for m in messages if 'appears in no frame' in m]
    assert len(warned) == 1
    assert warned[0].startswith('RefYouTubeVOSDataset: 1 expressions')
    assert "video 'vidA', expression '1'" in warned[0]

    test_set = build(root, meta_file='train/meta.json', test_mode=True,
                     sample_mode='video', pipeline=[])
    assert len(test_set) == 3  # nothing dropped for evaluation


def test_object_in_no_mask_is_redrawn_when_sampled(root):
    """Without ``frames`` in meta.json the absence is found when a sample
    is drawn: the pipeline returns None and the dataset draws another
    sample instead of stopping training."""
    exps = {'0': {'exp': 'a ghost', 'obj_id': '7'},
            '1': {'exp': 'a dog', 'obj_id': '2'}}
    write_ytvos(root, train_expressions=exps)
    dataset = build(root, meta_file=None)
    ghost = [i for i in range(len(dataset))
             if dataset.get_data_info(i)['obj_id'] == 7]
    assert ghost
    out = dataset[ghost[0]]
    assert out['data_samples'].metainfo['obj_id'] in (1, 2)  # not 7
