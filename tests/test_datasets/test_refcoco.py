# Copyright (c) OpenMMLab. All rights reserved.
import copy
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope
from pycocotools import mask as coco_mask

from dmformer.datasets import (LoadRefCOCOAnnotations, RefCOCODataset,
                               decode_coco_segmentation)
from dmformer.structures.rvos_data_sample import RVOSDataSample

H, W = 48, 64
CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
    'refcoco.py')


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('dmformer')


def rect_polygon(x1, y1, x2, y2):
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def write_refcoco(root, images=None, annotations=None):
    """Write a tiny MDETR-style RefCOCO tree; return the json path."""
    os.makedirs(osp.join(root, 'train2014'), exist_ok=True)
    for name in ('COCO_train2014_000000000001.jpg',
                 'COCO_train2014_000000000002.jpg'):
        img = np.full((H, W, 3), 90, np.uint8)
        img[10:30, 8:40] = 250
        assert cv2.imwrite(osp.join(root, 'train2014', name), img)
    rle = coco_mask.encode(
        np.asfortranarray(
            np.pad(np.ones((10, 12), np.uint8), ((20, H - 30), (30, W - 42)))))
    rle['counts'] = rle['counts'].decode('ascii')
    if images is None:
        images = [
            dict(
                id=0,
                original_id=1,
                height=H,
                width=W,
                file_name='COCO_train2014_000000000001.jpg',
                caption='The  Man on the LEFT',
                dataset_name='refcoco'),
            dict(
                id=1,
                original_id=2,
                height=H,
                width=W,
                file_name='COCO_train2014_000000000002.jpg',
                caption='red box',
                dataset_name='refcoco'),
            # its only annotation has an empty box: dropped
            dict(
                id=2,
                original_id=2,
                height=H,
                width=W,
                file_name='COCO_train2014_000000000002.jpg',
                caption='nothing',
                dataset_name='refcoco'),
        ]
    if annotations is None:
        annotations = [
            dict(
                id=10,
                image_id=0,
                bbox=[8, 10, 32, 20],
                area=640,
                iscrowd=0,
                category_id=1,
                segmentation=rect_polygon(8, 10, 40, 30)),
            dict(
                id=11,
                image_id=1,
                bbox=[30, 20, 12, 10],
                area=120,
                iscrowd=0,
                category_id=1,
                segmentation=rle),
            # crowd annotations are ignored
            dict(
                id=12,
                image_id=1,
                bbox=[0, 0, 5, 5],
                area=25,
                iscrowd=1,
                category_id=1,
                segmentation=rect_polygon(0, 0, 5, 5)),
            dict(
                id=13,
                image_id=2,
                bbox=[70, 5, 10, 10],
                area=100,
                iscrowd=0,
                category_id=1,
                segmentation=rect_polygon(70, 5, 80, 15)),
        ]
    path = osp.join(root, 'refcoco', 'instances_refcoco_train.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(
            dict(
                images=images,
                annotations=annotations,
                categories=[dict(id=1, name='object')]), f)
    return path


def build_dataset(root, pipeline=(), **kwargs):
    return RefCOCODataset(
        data_root=str(root),
        ann_file='refcoco/instances_refcoco_train.json',
        data_prefix=dict(img_path='train2014/'),
        pipeline=list(pipeline),
        **kwargs)


def test_load_data_list(tmp_path):
    write_refcoco(str(tmp_path))
    dataset = build_dataset(tmp_path)
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    assert info['text'] == info['ori_text'] == 'the man on the left'
    assert info['video_id'] == '0' and info['exp_id'] == '0'
    assert info['obj_id'] == 10 and info['image_id'] == 1
    assert info['img_path'] == [
        osp.join(
            str(tmp_path), 'train2014', 'COCO_train2014_000000000001.jpg')
    ]
    assert info['frame_id'] == ['COCO_train2014_000000000001']
    assert info['gt_anns'][0]['bbox'] == [8., 10., 40., 30.]
    assert info['subject_span'] is None
    # the crowd annotation of entry 1 is ignored
    assert len(dataset.get_data_info(1)['gt_anns']) == 1


def test_single_frame_pipeline(tmp_path):
    write_refcoco(str(tmp_path))
    dataset = build_dataset(tmp_path, [
        dict(type='LoadRVOSFrames'),
        dict(type='LoadRefCOCOAnnotations'),
        dict(type='PackRVOSInputs'),
    ])
    out = dataset[0]
    assert out['inputs'].shape == (1, 3, H, W)
    assert out['inputs'].dtype == torch.uint8
    sample = out['data_samples']
    assert isinstance(sample, RVOSDataSample)
    masks = sample.gt_instances.masks
    assert masks.shape == (1, H, W) and masks.dtype == torch.bool
    # the polygon (8, 10)-(40, 30) covers the bright rectangle
    bright = out['inputs'][0, 0] > 200
    iou = (masks[0] & bright).sum() / (masks[0] | bright).sum()
    assert iou > 0.9
    assert sample.gt_instances.bboxes.tolist() == [[8., 10., 40., 30.]]
    assert sample.gt_instances.valid.tolist() == [True]
    assert sample.text == 'the man on the left'
    # RLE annotation of entry 1
    mask1 = dataset[1]['data_samples'].gt_instances.masks[0]
    assert mask1.sum() == 120 and mask1[20:30, 30:42].all()


def test_pseudo_video_pipeline(tmp_path):
    write_refcoco(str(tmp_path))
    dataset = build_dataset(tmp_path, [
        dict(type='LoadRVOSFrames'),
        dict(type='LoadRefCOCOAnnotations'),
        dict(type='ImageToPseudoVideo', num_frames=3, motion_blur_prob=0.),
        dict(type='CheckValidFrames'),
        dict(type='PackRVOSInputs'),
    ])
    np.random.seed(0)
    out = dataset[0]
    assert out['inputs'].shape == (3, 3, H, W)
    gt = out['data_samples'].gt_instances
    assert gt.masks.shape == (3, H, W) and gt.bboxes.shape == (3, 4)
    assert out['data_samples'].frame_ids == ['COCO_train2014_000000000001'] * 3
    num_changed = 0
    for t in range(3):
        mask = gt.masks[t].numpy()
        if not gt.valid[t]:
            assert gt.bboxes[t].tolist() == [0.] * 4
            continue
        ys, xs = np.nonzero(mask)
        # boxes are recomputed from the warped masks
        assert gt.bboxes[t].tolist() == [
            xs.min(), ys.min(), xs.max() + 1,
            ys.max() + 1
        ]
        # the mask follows the (warped) bright object of the frame
        bright = out['inputs'][t].float().mean(0).numpy() > 170
        assert (bright & mask).sum() / (bright | mask).sum() > 0.7
        num_changed += int(gt.bboxes[t].tolist() != [8., 10., 40., 30.])
    assert gt.valid.any()
    assert num_changed >= 2  # two warped copies


def test_config_pipelines(tmp_path):
    write_refcoco(str(tmp_path))
    cfg = Config.fromfile(CONFIG)
    for name in ('train_pipeline', 'pseudo_video_train_pipeline'):
        dataset = build_dataset(tmp_path, cfg[name])
        num_frames = 5 if name.startswith('pseudo') else 1
        np.random.seed(1)
        for _ in range(3):
            out = dataset[0]
            inputs, sample = out['inputs'], out['data_samples']
            assert inputs.shape[:2] == (num_frames, 3)
            assert tuple(inputs.shape[2:]) == sample.img_shape
            assert max(inputs.shape[2:]) <= 800
            assert sample.gt_instances.masks.shape[1:] == inputs.shape[2:]
            assert sample.gt_instances.valid.any()
            assert sample.text in ('the man on the left',
                                   'the man on the right')
            start, end = sample.gt_subject_span.tolist()
            assert sample.text[start:end] == 'the man'
    dataset = build_dataset(tmp_path, cfg.test_pipeline, test_mode=True)
    out = dataset[0]
    # short side 360 (long side capped at 640), GT at the original size
    assert tuple(out['inputs'].shape) == (1, 3, 360, 480)
    assert out['data_samples'].gt_instances.masks.shape == (1, H, W)
    assert out['data_samples'].ori_shape == (H, W)


def test_decode_coco_segmentation_formats():
    poly = rect_polygon(2, 3, 12, 9)
    mask = decode_coco_segmentation(poly, 16, 20)
    assert mask.shape == (16, 20) and mask.dtype == np.uint8
    rle = coco_mask.encode(np.asfortranarray(mask))
    np.testing.assert_array_equal(
        decode_coco_segmentation(dict(rle), 16, 20), mask)
    as_str = dict(rle, counts=rle['counts'].decode('ascii'))
    np.testing.assert_array_equal(
        decode_coco_segmentation(as_str, 16, 20), mask)
    # uncompressed RLE (column-major run lengths)
    flat = np.asfortranarray(mask).flatten(order='F')
    runs, value, count = [], 0, 0
    for v in flat:
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    runs.append(count)
    np.testing.assert_array_equal(
        decode_coco_segmentation(dict(size=[16, 20], counts=runs), 16, 20),
        mask)
    with pytest.raises(ValueError, match='RLE size'):
        decode_coco_segmentation(dict(rle), 10, 20)
    with pytest.raises(ValueError, match='polygon'):
        decode_coco_segmentation([[1, 2, 3, 4]], 16, 20)
    with pytest.raises(ValueError, match='unsupported'):
        decode_coco_segmentation('abc', 16, 20)


def test_sentences_format_and_subject_labels(tmp_path):
    images = [
        dict(
            id=7,
            height=H,
            width=W,
            file_name='COCO_train2014_000000000001.jpg')
    ]
    annotations = [
        dict(
            id=3,
            image_id=7,
            bbox=[8, 10, 32, 20],
            iscrowd=0,
            segmentation=rect_polygon(8, 10, 40, 30),
            sentences=[dict(sent='white box'), 'the bright thing'])
    ]
    write_refcoco(str(tmp_path), images, annotations)
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps({'7_3': {'1': [4, 10]}}))
    dataset = build_dataset(tmp_path, subject_label_file=str(label_file))
    assert len(dataset) == 2
    infos = [dataset.get_data_info(i) for i in range(2)]
    assert [i['video_id'] for i in infos] == ['7_3', '7_3']
    assert [i['exp_id'] for i in infos] == ['0', '1']
    assert [i['text'] for i in infos] == ['white box', 'the bright thing']
    assert infos[0]['subject_span'] is None
    assert infos[1]['subject_span'] == [4, 10]
    label_file.write_text(json.dumps({'7_3': {'0': [0, 99]}}))
    with pytest.raises(ValueError, match='not a character span'):
        build_dataset(tmp_path, subject_label_file=str(label_file))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='instances_refcoco_train'):
        build_dataset(tmp_path)
    path = write_refcoco(str(tmp_path))
    with open(path, 'w') as f:
        json.dump(dict(images=[]), f)
    with pytest.raises(ValueError, match='annotations'):
        build_dataset(tmp_path)
    images = [
        dict(
            id=0,
            height=H,
            width=W,
            caption='two things',
            file_name='COCO_train2014_000000000001.jpg')
    ]
    annotations = [
        dict(
            id=1,
            image_id=0,
            bbox=[0, 0, 10, 10],
            segmentation=rect_polygon(0, 0, 10, 10)),
        dict(
            id=2,
            image_id=0,
            bbox=[20, 20, 10, 10],
            segmentation=rect_polygon(20, 20, 30, 30)),
    ]
    write_refcoco(str(tmp_path), images, annotations)
    with pytest.raises(ValueError, match='merge_multiple_objects'):
        build_dataset(tmp_path)
    dataset = build_dataset(tmp_path, merge_multiple_objects=True)
    results = LoadRefCOCOAnnotations()(copy.deepcopy(dataset.get_data_info(0)))
    assert results['gt_bboxes'][0].tensor.tolist() == [[0., 0., 30., 30.]]
    assert results['gt_masks'][0].masks.sum() == 200
    # annotation size disagrees with the loaded image
    results = dataset.get_data_info(0)
    results['ori_shape'] = [(10, 10)]
    with pytest.raises(ValueError, match='has size'):
        LoadRefCOCOAnnotations()(results)
    with open(path, 'w') as f:
        json.dump(dict(images=images[:1], annotations=[]), f)
    with pytest.raises(ValueError, match='no expression'):
        build_dataset(tmp_path)
    assert repr(LoadRefCOCOAnnotations()) == \
        'LoadRefCOCOAnnotations(box_from_mask=False)'


def test_box_from_mask_and_compose(tmp_path):
    write_refcoco(str(tmp_path))
    dataset = build_dataset(tmp_path)
    pipeline = Compose([
        dict(type='LoadRVOSFrames'),
        dict(type='LoadRefCOCOAnnotations', box_from_mask=True),
    ])
    out = pipeline(dataset.get_data_info(1))
    # tight box of the RLE mask (rows 20..29, columns 30..41)
    assert out['gt_bboxes'][0].tensor.tolist() == [[30., 20., 42., 30.]]
    assert out['gt_valid'] == [True]


def test_auto_subject_label_file(tmp_path):
    """``'auto'`` (the default) reads ``<ann_file stem>_subject_labels.json``
    if it exists; None disables stored labels."""
    path = write_refcoco(str(tmp_path))
    assert RefCOCODataset.default_subject_label_file(path) == osp.join(
        str(tmp_path), 'refcoco',
        'instances_refcoco_train_subject_labels.json')
    assert build_dataset(tmp_path).get_data_info(0)['subject_span'] is None
    with open(RefCOCODataset.default_subject_label_file(path), 'w') as f:
        json.dump({'0': {'0': [4, 7]}}, f)
    dataset = build_dataset(tmp_path)
    assert dataset.get_data_info(0)['subject_span'] == [4, 7]
    assert dataset.get_data_info(1)['subject_span'] is None
    dataset = build_dataset(tmp_path, subject_label_file=None)
    assert dataset.get_data_info(0)['subject_span'] is None
