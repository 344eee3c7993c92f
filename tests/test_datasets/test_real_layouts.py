# Copyright (c) OpenMMLab. All rights reserved.
"""The dataset classes on tiny copies of the real releases
(:mod:`dmformer.testing.real_layouts`): Ref-YouTube-VOS with its test
videos inside the valid expression file, MeViS with no-target and
multi-object expressions, Ref-DAVIS and A2D-Sentences through their
converters."""
import os.path as osp
import warnings

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from dmformer.datasets import (A2DSentencesDataset, MeViSDataset,
                               RefDAVISDataset, RefYouTubeVOSDataset)
from dmformer.datasets.mevis import check_mevis_split
from dmformer.datasets.transforms import loading
from dmformer.datasets.transforms.text import clean_caption
from dmformer.testing import REPO_ROOT, load_script
from dmformer.testing.real_layouts import (write_a2d_release,
                                           write_mevis_release,
                                           write_ref_davis_release,
                                           write_ref_ytvos_release)

init_default_scope('dmformer')


@pytest.fixture(autouse=True)
def fresh_mask_cache():
    """Every test reads its own mask files."""
    loading._MASK_DICTS.clear()
    yield
    loading._MASK_DICTS.clear()


def paper_pipeline(name: str, which: str) -> list:
    """A pipeline of a dataset config of the paper models."""
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', name))
    return cfg[which]


# ----------------------------------------------------------------------
# Ref-YouTube-VOS
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def ytvos(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ref-youtube-vos'))
    return root, write_ref_ytvos_release(root)


def test_ytvos_valid_excludes_test_videos(ytvos):
    root, release = ytvos
    valid, test = release['valid'], release['test']
    ds = RefYouTubeVOSDataset(
        data_root=root,
        split='valid',
        expected_num_videos=len(valid),
        pipeline=[])
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    # one sample per (valid video, expression), none of a test video
    assert [(d['video_id'], d['exp_id']) for d in infos] == [
        (v, e) for v in sorted(valid) for e in valid[v]['expressions']
    ]
    assert len(ds) == 6
    assert not {d['video_id'] for d in infos} & set(test)
    for d in infos:
        video = valid[d['video_id']]
        # the listed frames, gaps and first number as released
        assert d['video_frame_ids'] == video['frames']
        assert d['video_length'] == 3
        # captions lower-cased, whitespace collapsed, punctuation kept
        raw = video['expressions'][d['exp_id']]
        assert d['text'] == ' '.join(raw.lower().split())
        assert d['obj_id'] == -1 and d['ann_dir'] is None
    assert infos[1]['text'] == 'the dog (brown) jumping over a fence!'
    assert infos[2]['video_frame_ids'][0] == '00010'


def test_ytvos_valid_needs_the_test_exclusion(ytvos):
    root, release = ytvos
    # the 202 = 507 - 305 check of the paper config, at this size
    with pytest.raises(ValueError, match='expected 202 videos in .* minus '):
        RefYouTubeVOSDataset(
            data_root=root,
            split='valid',
            expected_num_videos=202,
            pipeline=[])
    # without the exclusion the test videos are read, and their frames are
    # not in valid/JPEGImages
    with pytest.raises(
            FileNotFoundError,
            match=r"video '2b904b76c9' whose frame folder .*valid/"
            'JPEGImages/2b904b76c9'):
        RefYouTubeVOSDataset(
            data_root=root,
            split='valid',
            exclude_ann_file=None,
            pipeline=[])


def test_ytvos_valid_through_the_paper_test_pipeline(ytvos):
    root, release = ytvos
    ds = RefYouTubeVOSDataset(
        data_root=root,
        split='valid',
        test_mode=True,
        pipeline=paper_pipeline('ref_youtube_vos.py', 'test_pipeline'))
    sizes = set()
    for i in range(len(ds)):
        out = ds[i]
        sample = out['data_samples']
        video = release['valid'][sample.video_id]
        assert sample.frame_ids == video['frames']
        assert tuple(sample.ori_shape) == video['size']
        # short side 360, aspect ratio kept (portrait stays portrait)
        h, w = sample.img_shape
        assert min(h, w) == 360
        assert (h > w) == (video['size'][0] > video['size'][1])
        assert out['inputs'].shape == (3, 3, h, w)
        assert 'gt_instances' not in sample  # no valid/Annotations
        sizes.add(video['size'])
    assert sizes == {(36, 64), (54, 96), (64, 36)}


def test_ytvos_train(ytvos):
    root, release = ytvos
    train = release['train']
    ds = RefYouTubeVOSDataset(data_root=root, split='train', pipeline=[])
    # anchors every 5 frames: 6 frames -> 2 anchors, 4 frames -> 1
    expected = [(v, e, a) for v in sorted(train)
                for e in train[v]['expressions']
                for a in range(0, len(train[v]['frames']), 5)]
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [(d['video_id'], d['exp_id'], d['anchor_idx'])
            for d in infos] == expected
    assert len(ds) == 7
    for d in infos:
        video = train[d['video_id']]
        caption, obj_id = video['expressions'][d['exp_id']]
        assert d['obj_id'] == obj_id
        assert d['category'] == video['categories'][obj_id]
        assert d['text'] == clean_caption(caption)
    # the dog (object 2) enters in the third frame
    pipeline = Compose([
        dict(type='RVOSFrameSample', mode='test'),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadRVOSAnnotations'),
    ])
    dog = next(d for d in infos if d['obj_id'] == 2)
    results = pipeline(dict(dog))
    assert results['gt_valid'] == [False, False, True, True, True, True]
    assert results['gt_masks'][2].masks.shape == (1, 36, 64)


# ----------------------------------------------------------------------
# MeViS
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def mevis(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('mevis'))
    return root, write_mevis_release(root)


def test_mevis_valid_u_targets(mevis):
    root, release = mevis
    ds = MeViSDataset(
        data_root=root,
        split='valid_u',
        test_mode=True,
        pipeline=paper_pipeline('mevis.py', 'test_pipeline'))
    videos = release['valid_u']
    assert len(ds) == 5
    no_target = 0
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        sample = ds[i]['data_samples']
        video = videos[sample.video_id]
        assert sample.frame_ids == video['frames']
        assert tuple(sample.ori_shape) == video['size']
        assert info['obj_ids'] == video['obj_ids'][sample.exp_id]
        gt = sample.gt_instances
        # the union of the referred objects at the original size; all
        # empty (and no valid frame) for an expression of no object
        np.testing.assert_array_equal(
            gt.masks.numpy(), video['targets'][sample.exp_id].astype(bool))
        if not info['anno_ids']:
            no_target += 1
            assert not gt.masks.any() and not gt.valid.any()
            assert gt.masks.shape == (3, *video['size'])
    assert no_target == 2
    # an object absent from the middle frame (null RLE): empty there
    man = ds[3]['data_samples']
    assert man.exp_id == '0' and man.gt_instances.valid.tolist() == [
        True, False, True
    ]


def test_mevis_valid_has_no_ground_truth(mevis):
    root, release = mevis
    ds = MeViSDataset(
        data_root=root,
        split='valid',
        test_mode=True,
        pipeline=paper_pipeline('mevis.py', 'test_pipeline'))
    videos = release['valid']
    assert [(ds.get_data_info(i)['video_id'], ds.get_data_info(i)['exp_id'])
            for i in range(len(ds))] == [(v, e) for v in sorted(videos)
                                         for e in videos[v]['expressions']]
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        assert 'gt_instances' not in sample
        assert sample.frame_ids == videos[sample.video_id]['frames']


def test_mevis_train_skips_no_target_clips(mevis):
    """A no-target expression stays in the data list; its clips have no
    valid frame, so training draws another sample (the official loader
    does the same)."""
    root, release = mevis
    ds = MeViSDataset(
        data_root=root,
        split='train',
        pipeline=paper_pipeline('mevis.py', 'train_pipeline'))
    assert len(ds) == 3  # 5 frames: one anchor per expression
    info = ds.get_data_info(2)
    assert info['anno_ids'] == [] and info['obj_ids'] == []
    loaded = Compose([
        dict(type='RVOSFrameSample', num_frames=5, max_skip=3, mode='train'),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadMeViSAnnotations'),
        dict(type='CheckValidFrames'),
    ])
    assert loaded(ds.get_data_info(2)) is None
    assert loaded(ds.get_data_info(1)) is not None
    sample = ds[2]['data_samples']  # redrawn among the other expressions
    assert sample.exp_id in ('0', '1')
    assert sample.gt_instances.valid.any()


def test_mevis_check_tool_accepts_the_release(mevis):
    root, _ = mevis
    report = check_mevis_split(root, 'valid_u', decode=True)
    assert report['problems'] == []
    assert report['stats'] == dict(
        videos=2,
        frames=6,
        expressions=5,
        multi_object=1,
        no_target=2,
        anno_ids=3,
        with_masks=True)
    assert check_mevis_split(root, 'train')['stats']['no_target'] == 1
    assert check_mevis_split(root, 'valid')['problems'] == []


# ----------------------------------------------------------------------
# Ref-DAVIS17 and A2D-Sentences through their converters
# ----------------------------------------------------------------------
def test_ref_davis_converted_release(tmp_path):
    davis = load_script('tools/dataset_converters/convert_davis_to_ytvos.py')
    release = write_ref_davis_release(
        str(tmp_path / 'DAVIS'), str(tmp_path / 'davis_text_annotations'))
    out = str(tmp_path / 'ref-davis')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        stats = davis.convert_davis_to_ytvos(
            str(tmp_path / 'DAVIS'), str(tmp_path / 'davis_text_annotations'),
            out)
    # object 3 of dogs-jump is described but in no mask: skipped, 4 times
    assert [s[1:] for s in stats['skipped']] == [('dogs-jump', 3, 'object '
                                                  'not in masks')] * 4
    assert any('dogs-jump' in str(w.message) for w in caught)
    valid = release['valid']
    ds = RefDAVISDataset(data_root=out, split='valid', pipeline=[])
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    # the misspelt 'clasic-car' of the text files is the video classic-car
    assert [(d['video_id'], d['exp_id']) for d in infos] == [
        (v, e) for v in sorted(valid)
        for e in sorted(valid[v]['expressions'], key=int)
    ]
    assert len(ds) == 16
    for d in infos:
        caption, obj_id = valid[d['video_id']]['expressions'][d['exp_id']]
        assert d['obj_id'] == obj_id
        assert d['text'] == clean_caption(caption)
        assert d['video_frame_ids'] == valid[d['video_id']]['frames']
    assert len(RefDAVISDataset(
        data_root=out, split='valid', annotator=1, pipeline=[])) == 4
    pipeline = Compose([
        dict(type='RVOSFrameSample', mode='test'),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadRVOSAnnotations'),
    ])
    results = pipeline(dict(infos[-1]))  # dogs-jump, object 2
    assert results['ori_shape'][0] == (24, 45)
    assert all(results['gt_valid'])


def test_a2d_converted_release(tmp_path):
    pytest.importorskip('h5py')
    a2d = load_script('tools/dataset_converters/a2d_sentences_to_json.py')
    root = str(tmp_path / 'a2d_sentences')
    release = write_a2d_release(root)
    written = a2d.convert_a2d(root)
    # the '1 (copy)'-style id and the missed video give no sample; the
    # dog (instance 1) is only in frame 3
    for split in ('train', 'test'):
        ds = A2DSentencesDataset(data_root=root, split=split, pipeline=[])
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        assert [(d['video_id'], int(d['annotated_frame_id']), d['obj_id'],
                 d['text']) for d in infos] == [
                     (v, f, i, clean_caption(q))
                     for v, f, i, q in release[split]
                 ], written[split]
    assert len(release['train']) == 3 and len(release['test']) == 1
    ds = A2DSentencesDataset(
        data_root=root,
        split='test',
        pipeline=[
            dict(type='A2DFrameSample', num_frames=3, mode='test'),
            dict(type='LoadRVOSFrames'),
            dict(type='LoadA2DAnnotations'),
            dict(
                type='PackRVOSInputs',
                meta_keys=('video_id', 'frame_ids', 'ori_shape',
                           'valid_indices')),
        ])
    sample = ds[0]['data_samples']
    assert tuple(sample.ori_shape) == release['sizes']['EadxBPmQvtg']
    assert sample.frame_ids == ['00001', '00002', '00003']
    masks = sample.gt_instances.masks
    assert masks[1].sum() == 26 * 30 and not masks[0].any()
