# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from dmformer.datasets.transforms import PackRVOSInputs
from dmformer.structures.rvos_data_sample import RVOSDataSample

H, W = 4, 6


def make_results(num_frames=3):
    imgs, masks, boxes = [], [], []
    for k in range(num_frames):
        img = np.zeros((H, W, 3), dtype=np.uint8)
        img[..., 0], img[..., 1], img[..., 2] = k, 100 + k, 200 + k
        imgs.append(img)
        mask = np.zeros((1, H, W), dtype=np.uint8)
        mask[0, 1:3, k:k + 2] = 1
        masks.append(BitmapMasks(mask, H, W))
        boxes.append(
            HorizontalBoxes(np.array([[k, 1, k + 2, 3]], dtype=np.float32)))
    return dict(
        img=imgs,
        gt_masks=masks,
        gt_bboxes=boxes,
        gt_valid=[True] * num_frames,
        video_id='vid',
        exp_id='2',
        obj_id=1,
        text='a cat',
        noun_chunks=[(0, 5)],
        frame_id=[f'{k:05d}' for k in range(num_frames)],
        img_path=[f'x/{k:05d}.jpg' for k in range(num_frames)],
        ori_shape=[(8, 12)] * num_frames,
        img_shape=[(H, W)] * num_frames,
        scale_factor=[(0.5, 0.5)] * num_frames,
        flip=True,
        flip_direction='horizontal',
        gt_subject_span=np.array([0, 5]),
        subject_source='parser')


def test_pack_inputs_and_gt():
    packed = PackRVOSInputs().transform(make_results())
    inputs, sample = packed['inputs'], packed['data_samples']
    assert isinstance(sample, RVOSDataSample)
    assert inputs.shape == (3, 3, H, W) and inputs.dtype == torch.uint8
    # channel c of frame k keeps the loaded (BGR) value
    assert inputs[2, :, 0, 0].tolist() == [2, 102, 202]
    gt = sample.gt_instances
    assert len(gt) == 3
    assert gt.masks.dtype == torch.bool and gt.masks.shape == (3, H, W)
    assert gt.masks[1].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert gt.bboxes.tolist() == [[0, 1, 2, 3], [1, 1, 3, 3], [2, 1, 4, 3]]
    assert gt.valid.tolist() == [True, True, True]
    assert sample.gt_subject_span.tolist() == [0, 5]
    assert sample.gt_subject_span.dtype == torch.long


def test_pack_metainfo():
    sample = PackRVOSInputs().transform(make_results())['data_samples']
    assert sample.video_id == 'vid' and sample.exp_id == '2'
    assert sample.obj_id == 1 and sample.text == 'a cat'
    assert sample.noun_chunks == [(0, 5)]
    assert sample.frame_ids == ['00000', '00001', '00002']
    assert sample.img_paths[1] == 'x/00001.jpg'
    assert sample.ori_shape == (8, 12) and sample.img_shape == (H, W)
    assert sample.scale_factor == (0.5, 0.5)
    assert sample.flip is True and sample.flip_direction == 'horizontal'
    assert sample.subject_source == 'parser'
    # per-frame flips are reduced too
    results = make_results()
    results['flip'] = [False] * 3
    sample = PackRVOSInputs(
        meta_keys=('flip', 'img_shape')).transform(results)['data_samples']
    assert sample.metainfo == dict(flip=False, img_shape=(H, W))
    # a 2-frame clip with a single video-level shape
    results = make_results(2)
    results['img_shape'] = [H, W]
    sample = PackRVOSInputs().transform(results)['data_samples']
    assert sample.img_shape == (H, W)


def test_pack_invalid_and_cropped_frames():
    results = make_results()
    # frame 1 flagged invalid (e.g. by CheckValidFrames): zero box
    results['gt_valid'][1] = False
    # frame 2 lost its instance in a crop: zero mask, invalid
    results['gt_masks'][2] = BitmapMasks(np.zeros((0, H, W), np.uint8), H, W)
    results['gt_bboxes'][2] = HorizontalBoxes(np.zeros((0, 4), np.float32))
    gt = PackRVOSInputs().transform(results)['data_samples'].gt_instances
    assert gt.valid.tolist() == [True, False, False]
    assert gt.bboxes[1:].abs().sum() == 0
    assert not gt.masks[2].any() and gt.masks.shape == (3, H, W)
    # plain (H, W) arrays are accepted too
    results = make_results(1)
    results['gt_masks'] = [np.ones((H, W), dtype=bool)]
    results.pop('gt_valid')
    gt = PackRVOSInputs().transform(results)['data_samples'].gt_instances
    assert gt.valid.tolist() == [True] and gt.masks.all()


def test_pack_without_gt():
    results = make_results()
    for key in ('gt_masks', 'gt_bboxes', 'gt_valid', 'gt_subject_span'):
        results.pop(key)
    sample = PackRVOSInputs().transform(results)['data_samples']
    assert 'gt_instances' not in sample
    assert 'gt_subject_span' not in sample


def test_pack_errors():
    results = make_results()
    results['img'][1] = np.zeros((H + 1, W, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="video 'vid'.*different sizes"):
        PackRVOSInputs().transform(results)
    results = make_results()
    results['gt_masks'][0] = BitmapMasks(np.zeros((2, H, W), np.uint8), H, W)
    with pytest.raises(ValueError, match='one instance per frame'):
        PackRVOSInputs().transform(results)
    results = make_results()
    results['img_shape'] = [(H, W), (H, W), (H, W + 1)]
    with pytest.raises(ValueError, match='img_shape'):
        PackRVOSInputs().transform(results)


def test_repr():
    assert repr(PackRVOSInputs(meta_keys=('video_id', 'text'))) == (
        "PackRVOSInputs(meta_keys=('video_id', 'text'))")
    assert repr(PackRVOSInputs()) == (
        f'PackRVOSInputs(meta_keys={PackRVOSInputs.DEFAULT_META_KEYS})')


def test_video_level_lists_are_not_reduced():
    # a single-frame clip (RefCOCO, A2D with T=1) with one noun chunk and
    # one valid index: lists of length T that must stay lists
    results = make_results(num_frames=1)
    results['valid_indices'] = [0]
    packed = PackRVOSInputs(meta_keys=('noun_chunks', 'valid_indices',
                                       'img_shape')).transform(results)
    meta = packed['data_samples'].metainfo
    assert meta['noun_chunks'] == [(0, 5)]
    assert meta['valid_indices'] == [0]
    assert meta['img_shape'] == (H, W)
