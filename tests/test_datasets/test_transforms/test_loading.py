# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from PIL import Image

from dmformer.datasets.transforms import (LoadRVOSAnnotations, LoadRVOSFrames,
                                          LoadSubjectSpan)
from dmformer.datasets.transforms.loading import map_char_span

H, W = 6, 8


def write_jpg(path, bgr, size=(H, W)):
    img = np.empty((*size, 3), dtype=np.uint8)
    img[:] = bgr
    assert cv2.imwrite(path, img)


def write_palette_png(path, ids):
    img = Image.fromarray(ids.astype(np.uint8), mode='P')
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    img.save(path)


@pytest.fixture
def clip(tmp_path):
    """3 frames; object 1 at a moving box, absent in frame 2."""
    img_paths, mask_paths = [], []
    for k in range(3):
        img_path = osp.join(str(tmp_path), f'{k:05d}.jpg')
        write_jpg(img_path, (10 + 50 * k, 128, 240))
        ids = np.zeros((H, W), dtype=np.uint8)
        if k < 2:
            ids[1:3, k:k + 4] = 1
        ids[4:6, 6:8] = 2
        mask_path = osp.join(str(tmp_path), f'{k:05d}.png')
        write_palette_png(mask_path, ids)
        img_paths.append(img_path)
        mask_paths.append(mask_path)
    return dict(
        video_id='vid',
        exp_id='0',
        obj_id=1,
        img_path=img_paths,
        mask_path=mask_paths,
        ann_dir=str(tmp_path),
        ann_suffix='.png',
        video_frame_ids=[f'{k:05d}' for k in range(3)])


def test_load_frames_bgr(clip):
    results = LoadRVOSFrames().transform(clip)
    assert len(results['img']) == 3
    for k, img in enumerate(results['img']):
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        # BGR order, JPEG-close to the written values
        assert np.abs(img.reshape(-1, 3).mean(0) -
                      [10 + 50 * k, 128, 240]).max() < 3
    assert results['img_shape'] == [(H, W)] * 3
    assert results['ori_shape'] == [(H, W)] * 3


def test_load_frames_errors(clip, tmp_path):
    bad = dict(clip, img_path=clip['img_path'] + [str(tmp_path / 'no.jpg')])
    with pytest.raises(FileNotFoundError, match=r"no\.jpg.*video 'vid'"):
        LoadRVOSFrames().transform(bad)
    corrupt = str(tmp_path / 'corrupt.jpg')
    with open(corrupt, 'wb') as f:
        f.write(b'\x00garbage')
    with pytest.raises(ValueError, match=r'corrupt\.jpg'):
        LoadRVOSFrames().transform(dict(clip, img_path=[corrupt]))
    other = str(tmp_path / 'big.jpg')
    write_jpg(other, (0, 0, 0), size=(H + 1, W))
    with pytest.raises(ValueError, match=r'big\.jpg.*size'):
        LoadRVOSFrames().transform(
            dict(clip, img_path=clip['img_path'] + [other]))
    with pytest.raises(ValueError, match='per-frame list'):
        LoadRVOSFrames().transform(dict(clip, img_path=clip['img_path'][0]))


def test_load_annotations(clip):
    results = LoadRVOSAnnotations().transform(LoadRVOSFrames().transform(clip))
    masks, boxes = results['gt_masks'], results['gt_bboxes']
    assert all(isinstance(m, BitmapMasks) and len(m) == 1 for m in masks)
    assert all(isinstance(b, HorizontalBoxes) for b in boxes)
    expected = np.zeros((H, W), dtype=np.uint8)
    expected[1:3, 1:5] = 1
    np.testing.assert_array_equal(masks[1].masks[0], expected)
    assert boxes[0].tensor.tolist() == [[0, 1, 4, 3]]
    assert boxes[1].tensor.tolist() == [[1, 1, 5, 3]]
    assert boxes[2].tensor.tolist() == [[0, 0, 0, 0]]
    assert results['gt_valid'] == [True, True, False]
    assert not masks[2].masks.any()


def test_load_annotations_errors(clip, tmp_path):
    loaded = LoadRVOSFrames().transform(dict(clip))
    # mask size differs from the frame
    small = str(tmp_path / 'small.png')
    write_palette_png(small, np.zeros((H - 1, W)))
    with pytest.raises(ValueError, match=r'small\.png.*size'):
        LoadRVOSAnnotations().transform(
            dict(loaded, mask_path=[small] + clip['mask_path'][1:]))
    # missing / non-index PNGs
    with pytest.raises(FileNotFoundError, match=r'none\.png'):
        LoadRVOSAnnotations().transform(
            dict(clip, mask_path=[str(tmp_path / 'none.png')]))
    rgb = str(tmp_path / 'rgb.png')
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(rgb)
    with pytest.raises(ValueError, match=r'rgb\.png.*palette'):
        LoadRVOSAnnotations().transform(dict(clip, mask_path=[rgb]))
    # an object absent from every mask of the video: for evaluation an
    # error (a wrong obj_id) ...
    with pytest.raises(ValueError, match="Object 5.*'vid'.*unknown obj_id"):
        LoadRVOSAnnotations(skip_absent_object=False).transform(
            dict(clip, obj_id=5))
    # ... for training a skipped sample (the dataset draws another one),
    # as the official loader does, warned once per (video, object)
    transform = LoadRVOSAnnotations()
    assert transform.transform(dict(clip, obj_id=5)) is None
    assert transform.transform(dict(clip, obj_id=5)) is None
    assert transform._absent == {('vid', 5)}
    # absent from the loaded frame only: the rest of the video is scanned
    transform = LoadRVOSAnnotations()
    out = transform.transform(dict(clip, mask_path=clip['mask_path'][2:]))
    assert out['gt_valid'] == [False]
    assert ('vid', 1) in transform._checked
    # no annotations
    with pytest.raises(ValueError, match='no annotations'):
        LoadRVOSAnnotations().transform(dict(clip, mask_path=None))
    unannotated = dict(clip, mask_path=None)
    out = LoadRVOSAnnotations(skip_unannotated=True).transform(unannotated)
    assert 'gt_masks' not in out
    out = LoadRVOSAnnotations(skip_unannotated=True).transform(
        dict(clip, obj_id=-1))
    assert 'gt_masks' not in out
    with pytest.raises(ValueError, match='obj_id'):
        LoadRVOSAnnotations().transform(dict(clip, obj_id=-1))


def test_map_char_span():
    src = 'the dog left of the man'
    dst = 'the dog right of the man'
    assert map_char_span((16, 23), src, dst) == (17, 24)
    assert dst[17:24] == 'the man'
    assert map_char_span((8, 12), src, dst) == (8, 13)  # 'left' -> 'right'
    assert map_char_span((0, 7), src, dst) == (0, 7)
    assert map_char_span((2, 5), src, src) == (2, 5)
    with pytest.raises(ValueError, match='different numbers of words'):
        map_char_span((0, 3), src, 'the dog')


def test_load_subject_span_teacher():
    results = dict(
        text='the man on the right',
        ori_text='the man on the left',
        subject_span=[15, 19])
    out = LoadSubjectSpan().transform(results)
    # stored label follows the flipped caption: 'left' -> 'right'
    assert out['gt_subject_span'].tolist() == [15, 20]
    assert out['gt_subject_span'].dtype == np.int64
    assert out['subject_source'] == 'teacher'


def test_load_subject_span_parser(monkeypatch):
    # pre-computed noun chunks: the first one is the subject
    out = LoadSubjectSpan(use_stored_labels=False).transform(
        dict(
            text='a cat near a dog',
            noun_chunks=[(0, 5), (11, 16)],
            subject_span=[11, 16]))
    assert out['gt_subject_span'].tolist() == [0, 5]
    assert out['subject_source'] == 'parser'
    # no chunks: the whole sentence
    out = LoadSubjectSpan().transform(dict(text='running', noun_chunks=[]))
    assert out['gt_subject_span'].tolist() == [0, 7]
    # computed on the fly with the noun-chunk utility
    import dmformer.utils.noun_chunks as noun_chunks
    monkeypatch.setattr(noun_chunks, 'extract_noun_chunks',
                        lambda text: [(2, 4)])
    out = LoadSubjectSpan().transform(dict(text='a bird'))
    assert out['gt_subject_span'].tolist() == [2, 4]


def test_reprs():
    assert repr(LoadRVOSFrames()) == (
        "LoadRVOSFrames(to_float32=False, color_type='color', "
        "imdecode_backend='cv2', backend_args=None)")
    assert repr(LoadRVOSAnnotations()) == (
        'LoadRVOSAnnotations(check_absent_object=True, '
        'skip_absent_object=True, skip_unannotated=False, '
        'with_seg_map=False, backend_args=None)')
    assert repr(
        LoadSubjectSpan()) == ('LoadSubjectSpan(use_stored_labels=True)')
