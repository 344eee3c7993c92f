# Copyright (c) OpenMMLab. All rights reserved.
"""MeViSDataset + LoadMeViSAnnotations on a tiny tree in the official
layout (``{split}/JPEGImages``, ``meta_expressions.json`` with obj_id /
anno_id lists, ``mask_dict.json`` with COCO RLEs)."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from pycocotools import mask as coco_mask
from ytvos_fixture import H, W, frame_name, write_frame, write_json

from dmformer.datasets import MeViSDataset
from dmformer.datasets.mevis import check_mevis_split
from dmformer.datasets.transforms import loading
from dmformer.testing import load_script

init_default_scope('dmformer')

NUM_FRAMES = 4


def box_mask(k: int, obj: int) -> np.ndarray:
    """Mask of object ``obj`` (0, 1, 2) in frame ``k``: object 0 moves
    right, object 1 is fixed, object 2 is absent in frames 0-1."""
    mask = np.zeros((H, W), np.uint8)
    if obj == 0:
        mask[2:8, k:k + 6] = 1
    elif obj == 1:
        mask[12:20, 20:28] = 1
    elif k >= 2:
        mask[14:22, 2:9] = 1
    return mask


def rle(mask: np.ndarray) -> dict:
    """A compressed RLE with ``counts`` as str (as in mask_dict.json)."""
    out = coco_mask.encode(np.asfortranarray(mask))
    out['counts'] = out['counts'].decode('ascii')
    return out


def write_mevis_split(root: str, split: str, with_masks: bool = True,
                      expressions=None, tracks=None) -> str:
    """Write one split with one video ``vid0`` of three objects.

    Returns:
        str: The split folder.
    """
    names = [frame_name(k) for k in range(NUM_FRAMES)]
    for k, name in enumerate(names):
        write_frame(osp.join(root, split, 'JPEGImages', 'vid0', name + '.jpg'),
                    k)
    if expressions is None:
        expressions = {
            '0': dict(exp='the box moving right', obj_id=[0], anno_id=[10]),
            '1': dict(exp='the two boxes', obj_id=[0, 1], anno_id=[10, 11]),
            '2': dict(exp='the box that appears', obj_id=[2], anno_id=[12]),
        }
        if not with_masks:
            expressions = {
                k: dict(exp=v['exp'])
                for k, v in expressions.items()
            }
    write_json(
        osp.join(root, split, 'meta_expressions.json'),
        dict(videos=dict(vid0=dict(expressions=expressions, frames=names))))
    if with_masks:
        if tracks is None:
            tracks = {
                str(10 + obj): [
                    rle(box_mask(k, obj)) if box_mask(k, obj).any() else None
                    for k in range(NUM_FRAMES)
                ]
                for obj in range(3)
            }
        write_json(osp.join(root, split, 'mask_dict.json'), tracks)
    return osp.join(root, split)


@pytest.fixture(autouse=True)
def fresh_mask_cache():
    """Every test reads its own mask files."""
    loading._MASK_DICTS.clear()
    yield
    loading._MASK_DICTS.clear()


TEST_PIPELINE = [
    dict(type='RVOSFrameSample', mode='test'),
    dict(type='LoadRVOSFrames'),
    dict(type='LoadMeViSAnnotations', skip_unannotated=True),
    dict(type='PackRVOSInputs'),
]


def build(root, split, **kwargs):
    kwargs.setdefault('pipeline', TEST_PIPELINE)
    return MeViSDataset(data_root=root, split=split, **kwargs)


def test_data_infos(tmp_path):
    write_mevis_split(str(tmp_path), 'train')
    ds = build(str(tmp_path), 'train', anchor_stride=2, pipeline=[])
    # 3 expressions x anchors 0, 2
    assert len(ds) == 6
    info = ds.get_data_info(2)
    assert info['exp_id'] == '1' and info['anchor_idx'] == 0
    assert info['obj_ids'] == [0, 1] and info['anno_ids'] == ['10', '11']
    assert info['obj_id'] == -1
    assert info['mask_file'] == osp.join(str(tmp_path), 'train',
                                         'mask_dict.json')
    assert info['text'] == 'the two boxes'


def test_union_masks_valid_u(tmp_path):
    write_mevis_split(str(tmp_path), 'valid_u')
    ds = build(str(tmp_path), 'valid_u')
    assert len(ds) == 3
    by_exp = {}
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        by_exp[sample.exp_id] = sample.gt_instances.masks
    # two objects: the union of both masks in every frame
    two = np.asarray(by_exp['1'])
    for k in range(NUM_FRAMES):
        expected = box_mask(k, 0) | box_mask(k, 1)
        np.testing.assert_array_equal(two[k], expected.astype(bool))
    # an object absent in frames 0-1 has empty targets there
    appears = np.asarray(by_exp['2'])
    assert not appears[:2].any()
    assert appears[2:].any(axis=(1, 2)).all()


def test_valid_split_has_no_ground_truth(tmp_path):
    write_mevis_split(str(tmp_path), 'valid', with_masks=False)
    ds = build(str(tmp_path), 'valid')
    info = ds.get_data_info(0)
    assert info['mask_file'] is None and info['anno_ids'] == []
    sample = ds[0]['data_samples']
    assert 'masks' not in sample.get('gt_instances', {})
    assert len(sample.frame_ids) == NUM_FRAMES


def test_no_target_expression(tmp_path):
    """An expression of no object (empty lists) has an empty target in
    every frame; in training its clips have no valid frame and
    CheckValidFrames asks for another sample."""
    expressions = {
        '0': dict(exp='the box moving right', obj_id=[0], anno_id=[10]),
        '1': dict(exp='the cat', obj_id=[], anno_id=[]),
    }
    write_mevis_split(str(tmp_path), 'valid_u', expressions=expressions)
    ds = build(str(tmp_path), 'valid_u')
    assert len(ds) == 2
    info = ds.get_data_info(1)
    assert info['obj_ids'] == [] and info['anno_ids'] == []
    gt = ds[1]['data_samples'].gt_instances
    assert gt.masks.shape == (NUM_FRAMES, H, W)
    assert not gt.masks.any() and not gt.valid.any()
    assert not gt.bboxes.any()
    write_mevis_split(str(tmp_path), 'train', expressions=expressions)
    train = build(str(tmp_path), 'train', pipeline=[], anchor_stride=4)
    pipeline = Compose([
        dict(type='RVOSFrameSample', num_frames=2, max_skip=1, mode='train'),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadMeViSAnnotations'),
        dict(type='CheckValidFrames'),
    ])
    assert pipeline(train.get_data_info(1)) is None
    assert pipeline(train.get_data_info(0)) is not None


def test_load_mevis_annotations_needs_anno_ids(tmp_path):
    split_dir = write_mevis_split(str(tmp_path), 'valid_u')
    transform = loading.LoadMeViSAnnotations()
    results = dict(
        video_id='vid0',
        exp_id='0',
        mask_file=osp.join(split_dir, 'mask_dict.json'),
        frame_idx=[0],
        frame_id=[frame_name(0)],
        ori_shape=[(H, W)])
    with pytest.raises(ValueError,
                       match="Expression '0' of video 'vid0' has no "
                       "'anno_ids'"):
        transform(dict(results))
    with pytest.raises(ValueError, match='the split has no mask_dict.json'):
        transform(dict(results, mask_file=None))
    out = transform(dict(results, anno_ids=[]))
    assert out['gt_valid'] == [False]
    assert out['gt_masks'][0].masks.shape == (1, H, W)


def test_train_pipeline_unions(tmp_path):
    write_mevis_split(str(tmp_path), 'train')
    pipeline = Compose([
        dict(type='RVOSFrameSample', num_frames=2, max_skip=1, mode='train'),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadMeViSAnnotations'),
    ])
    ds = build(str(tmp_path), 'train', pipeline=[], anchor_stride=4)
    results = pipeline(ds.get_data_info(1))  # 'the two boxes', anchor 0
    for idx, bitmap in zip(results['frame_idx'], results['gt_masks']):
        expected = box_mask(idx, 0) | box_mask(idx, 1)
        np.testing.assert_array_equal(bitmap.masks[0], expected)
    assert all(results['gt_valid'])
    # the box of the union spans both objects
    x1, y1, x2, y2 = results['gt_bboxes'][0].tensor[0].tolist()
    assert y1 == 2 and y2 == 20 and x2 == 28


@pytest.mark.parametrize('expressions, message', [
    ({
        '0': dict(exp='the box', obj_id=[0], anno_id=[99])
    }, "video 'vid0', expression '0' .*anno_id 99 is not in mask file "
     '.*mask_dict.json'),
    ({
        '0': dict(exp='the box')
    }, "video 'vid0', expression '0' .*missing obj_id / anno_id list"),
    ({
        '0': dict(exp='the box', obj_id=[0], anno_id=None)
    }, 'missing obj_id / anno_id list'),
    ({
        '0': dict(exp='the box', obj_id=[0, 1], anno_id=[10])
    }, 'lists 2 obj_id and 1 anno_id'),
    ({
        '0': dict(exp='the box', obj_id=[0], anno_id=[])
    }, 'lists 1 obj_id and 0 anno_id'),
    ({
        '0': dict(exp='the box', obj_id=['a'], anno_id=[10])
    }, 'obj_id must be a list of integers'),
])
def test_bad_expressions(tmp_path, expressions, message):
    write_mevis_split(str(tmp_path), 'train', expressions=expressions)
    with pytest.raises(ValueError, match=message):
        build(str(tmp_path), 'train', pipeline=[])


def test_track_length_mismatch(tmp_path):
    tracks = {'10': [None] * (NUM_FRAMES - 1)}
    write_mevis_split(
        str(tmp_path),
        'train',
        expressions={'0': dict(exp='the box', obj_id=[0], anno_id=[10])},
        tracks=tracks)
    with pytest.raises(ValueError, match='anno_id 10 has 3 masks .* 4 frames'):
        build(str(tmp_path), 'train', pipeline=[])


def test_rle_of_another_size(tmp_path):
    small = rle(np.ones((H - 4, W), np.uint8))
    tracks = {'10': [small] * NUM_FRAMES}
    write_mevis_split(
        str(tmp_path),
        'valid_u',
        expressions={'0': dict(exp='the box', obj_id=[0], anno_id=[10])},
        tracks=tracks)
    ds = build(str(tmp_path), 'valid_u')
    with pytest.raises(
            ValueError,
            match=r"video 'vid0', expression '0', frame '00000' of mask file "
            r".*mask_dict.json', anno_id 10: RLE size \[20, 32\] does not "
            r'match the image size \[24, 32\]'):
        ds[0]


def test_missing_frame(tmp_path):
    split_dir = write_mevis_split(str(tmp_path), 'valid_u')
    missing = osp.join(split_dir, 'JPEGImages', 'vid0', frame_name(2) + '.jpg')
    os.remove(missing)
    ds = build(str(tmp_path), 'valid_u')
    with pytest.raises(
            FileNotFoundError,
            match=f"Frame file '{missing}' of video 'vid0' \\(expression "
            "'0'\\) does not exist"):
        ds[0]


def test_missing_or_corrupt_mask_file(tmp_path):
    split_dir = write_mevis_split(str(tmp_path), 'train')
    path = osp.join(split_dir, 'mask_dict.json')
    with open(path, 'w') as f:
        f.write('{"10": [')
    with pytest.raises(ValueError, match='Mask file .* is not valid JSON'):
        build(str(tmp_path), 'train', pipeline=[])
    with open(path, 'w') as f:
        json.dump({'10': 'x'}, f)
    with pytest.raises(ValueError, match="found anno_id '10'"):
        build(str(tmp_path), 'train', pipeline=[])
    os.remove(path)
    with pytest.raises(FileNotFoundError, match='Mask file .* does not exist'):
        build(str(tmp_path), 'train', pipeline=[])


def test_bad_split():
    with pytest.raises(ValueError, match='split must be one of'):
        MeViSDataset(split='test', lazy_init=True)


def test_check_mevis_split_clean(tmp_path):
    write_mevis_split(str(tmp_path), 'valid_u')
    write_mevis_split(str(tmp_path), 'valid', with_masks=False)
    report = check_mevis_split(str(tmp_path), 'valid_u', decode=True)
    assert report['problems'] == []
    assert report['stats'] == dict(
        videos=1,
        frames=NUM_FRAMES,
        expressions=3,
        multi_object=1,
        no_target=0,
        anno_ids=3,
        with_masks=True)
    report = check_mevis_split(str(tmp_path), 'valid')
    assert report['problems'] == [] and not report['stats']['with_masks']


def test_check_mevis_split_problems(tmp_path):
    tracks = {
        '10': [rle(np.ones((H - 4, W), np.uint8))] * NUM_FRAMES,
        '11': [None] * (NUM_FRAMES + 1),
    }
    expressions = {
        '0': dict(exp='the box', obj_id=[0], anno_id=[10]),
        '1': dict(exp='the other box', obj_id=[1], anno_id=[11]),
        '2': dict(exp='a third box', obj_id=[2], anno_id=[12]),
        '3': dict(exp='no object lists', obj_id=[0]),
        '4': dict(exp='no object', obj_id=[], anno_id=[]),
    }
    split_dir = write_mevis_split(
        str(tmp_path), 'train', expressions=expressions, tracks=tracks)
    missing = osp.join(split_dir, 'JPEGImages', 'vid0', frame_name(3) + '.jpg')
    os.remove(missing)
    problems = check_mevis_split(str(tmp_path), 'train')['problems']
    assert len(problems) == 5, problems
    text = '\n'.join(problems)
    assert f"video 'vid0': frame {missing} is listed but missing" in text
    assert "expression '0': anno_id 10, frame 0: RLE size [20, 32]" in text
    assert "expression '1': anno_id 11 has 5 masks" in text
    assert "expression '2': anno_id 12 is not in" in text
    assert "expression '3': missing obj_id / anno_id list" in text
    assert "expression '4'" not in text  # refers to no object: fine


def test_check_mevis_cli(tmp_path, capsys):
    tool = load_script('tools/dataset_converters/check_mevis.py')
    write_mevis_split(str(tmp_path), 'train')
    write_mevis_split(str(tmp_path), 'valid_u')
    write_mevis_split(str(tmp_path), 'valid', with_masks=False)
    assert tool.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'valid_u: 1 videos, 4 frames, 3 expressions (1 refer to several ' \
        'objects, 0 to none), 3 object tracks, with masks: 0 problem(s)' in out
    assert out.strip().endswith('OK')
    os.remove(osp.join(str(tmp_path), 'valid_u', 'mask_dict.json'))
    loading._MASK_DICTS.clear()
    os.remove(
        osp.join(str(tmp_path), 'train', 'JPEGImages', 'vid0',
                 frame_name(0) + '.jpg'))
    assert tool.main([str(tmp_path), '--splits', 'train', 'valid_u']) == 1
    out = capsys.readouterr().out
    assert 'is listed but missing' in out
    assert 'valid_u/mask_dict.json: does not exist' in out
    assert out.strip().endswith('2 problem(s) found')


def test_multi_object_expression_scored_against_union(tmp_path):
    """A prediction of one of the two objects of 'the two boxes' scores
    its IoU with the union, through MeViSSubmissionMetric."""
    import torch
    from mmengine.structures import InstanceData

    from dmformer.evaluation import MeViSSubmissionMetric
    from dmformer.evaluation.functional import db_eval_iou

    write_mevis_split(str(tmp_path), 'valid_u')
    ds = build(str(tmp_path), 'valid_u')
    sample = ds[1]['data_samples']
    assert sample.exp_id == '1'
    pred = np.stack([box_mask(k, 0) for k in range(NUM_FRAMES)]).astype(bool)
    sample.pred_instances = InstanceData(masks=torch.from_numpy(pred))
    metric = MeViSSubmissionMetric(
        outfile_prefix=str(tmp_path / 'out'), zip_name=None)
    metric.dataset_meta = {}
    metric.process({}, [sample])
    result = metric.compute_metrics(metric.results)
    union = np.stack([
        box_mask(k, 0) | box_mask(k, 1) for k in range(NUM_FRAMES)
    ]).astype(bool)
    expected = db_eval_iou(union, pred).mean()
    assert expected < 0.5  # the second object counts
    assert result['J'] == pytest.approx(100 * expected)
    png = osp.join(str(tmp_path), 'out', 'Annotations', 'vid0', '1',
                   frame_name(0) + '.png')
    assert osp.isfile(png)
