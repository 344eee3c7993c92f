# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from ytvos_fixture import H, W, write_frame, write_json, write_png

from dmformer.datasets import RefDAVISDataset
from dmformer.testing import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools/dataset_converters/convert_davis_to_ytvos.py')


@pytest.fixture(autouse=True)
def default_scope():
    init_default_scope('dmformer')


def load_tool():
    return load_script(TOOL)


def davis_ids(video: str, k: int) -> np.ndarray:
    """Object ids of frame ``k``: objects 1 and 2 (2 only in 'dogs-jump')."""
    ids = np.zeros((H, W), dtype=np.uint8)
    ids[1:5, 1 + k:6 + k] = 1
    if video == 'dogs-jump':
        ids[10:20, 10:20] = 2
    return ids


def write_fake_davis(root: str) -> None:
    """A tiny DAVIS-2017 release + Ref-DAVIS expression files."""
    davis = osp.join(root, 'DAVIS')
    videos = {'bear': 3, 'classic-car': 2, 'dogs-jump': 2}
    for video, num in videos.items():
        for k in range(num):
            write_frame(
                osp.join(davis, 'JPEGImages/480p', video, f'{k:05d}.jpg'), k)
            write_png(
                osp.join(davis, 'Annotations_unsupervised/480p', video,
                         f'{k:05d}.png'), davis_ids(video, k))
    os.makedirs(osp.join(davis, 'ImageSets/2017'))
    with open(osp.join(davis, 'ImageSets/2017/train.txt'), 'w') as f:
        f.write('bear\n')
    with open(osp.join(davis, 'ImageSets/2017/val.txt'), 'w') as f:
        f.write('classic-car\ndogs-jump\n')
    write_json(
        osp.join(davis, 'davis_semantics.json'),
        {'dogs-jump': {
            '1': 'dog',
            '2': 'person'
        }})
    text = osp.join(root, 'davis_text_annotations')
    os.makedirs(text)
    contents = {
        'Davis17_annot1.txt':
        'bear 1 "a brown bear"\n'
        'clasic-car 1 "a white car"\n'  # misspelt in the release
        'dogs-jump 1 "a dog jumping"\n'
        'dogs-jump 2 "a man"\n',
        'Davis17_annot1_full_video.txt':
        'bear 1 "a bear walking"\n'
        'classic-car 1 "a car driving"\n'
        'dogs-jump 1 "a dog running"\n'
        'dogs-jump 2 "a man in black"\n',
        'Davis17_annot2.txt':
        'bear 1 "bear"\n'
        'classic-car 1 "old car"\n'
        'dogs-jump 1 "black dog"\n'
        'dogs-jump 2 "person"\n'
        'unknown-video 1 "nothing"\n',
        'Davis17_annot2_full_video.txt':
        'bear 1 "big bear"\n'
        'classic-car 1 "vintage car"\n'
        'dogs-jump 1 "dog on the left"\n'
        'dogs-jump 2 "person standing"\n'
        'dogs-jump 3 "no such object"\n',
    }
    for name, content in contents.items():
        with open(osp.join(text, name), 'w') as f:
            f.write(content)


@pytest.fixture
def converted(tmp_path):
    root = str(tmp_path)
    write_fake_davis(root)
    out = osp.join(root, 'ref-davis')
    with pytest.warns(UserWarning) as record:
        stats = load_tool().convert_davis_to_ytvos(
            osp.join(root, 'DAVIS'), osp.join(root, 'davis_text_annotations'),
            out)
    messages = ' '.join(str(w.message) for w in record)
    assert "video 'unknown-video' (video not in ImageSets)" in messages
    assert "video 'dogs-jump' object 3 (object not in masks)" in messages
    return root, out, stats


def test_convert_layout_and_expressions(converted):
    root, out, stats = converted
    assert stats['train'] == dict(videos=1, objects=1, expressions=4)
    assert stats['valid'] == dict(videos=2, objects=3, expressions=12)
    assert {(s[1], s[2])
            for s in stats['skipped']} == {('unknown-video', None),
                                           ('dogs-jump', 3)}
    with open(osp.join(out, 'meta_expressions/valid/meta_expressions.json')) \
            as f:
        videos = json.load(f)['videos']
    assert sorted(videos) == ['classic-car', 'dogs-jump']
    exps = videos['dogs-jump']['expressions']
    # object k: ids 4(k-1) .. 4(k-1)+3 = annot1, annot1 full, annot2, full
    assert list(exps) == [str(i) for i in range(8)]
    assert [exps[str(i)]['exp'] for i in range(8)] == [
        'a dog jumping', 'a dog running', 'black dog', 'dog on the left',
        'a man', 'a man in black', 'person', 'person standing'
    ]
    assert [exps[str(i)]['obj_id'] for i in range(8)] == ['1'] * 4 + ['2'] * 4
    assert videos['dogs-jump']['frames'] == ['00000', '00001']
    # the misspelt 'clasic-car' is fixed
    assert videos['classic-car']['expressions']['0']['exp'] == 'a white car'
    with open(osp.join(out, 'valid/meta.json')) as f:
        meta = json.load(f)['videos']
    assert meta['dogs-jump']['objects']['2'] == dict(
        category='person', frames=['00000', '00001'])
    assert meta['classic-car']['objects']['1']['category'] is None
    # symlinks, the sources are left in place
    link = osp.join(out, 'valid/JPEGImages/dogs-jump')
    assert osp.islink(link)
    assert osp.isfile(
        osp.join(root, 'DAVIS/JPEGImages/480p/dogs-jump', '00000.jpg'))
    assert osp.isfile(osp.join(out, 'train/Annotations/bear/00002.png'))


def test_convert_copy_mode(tmp_path):
    root = str(tmp_path)
    write_fake_davis(root)
    out = osp.join(root, 'copied')
    with pytest.warns(UserWarning):
        load_tool().convert_davis_to_ytvos(
            osp.join(root, 'DAVIS'),
            osp.join(root, 'davis_text_annotations'),
            out,
            mode='copy')
    path = osp.join(out, 'train/JPEGImages/bear')
    assert osp.isdir(path) and not osp.islink(path)
    assert sorted(os.listdir(path)) == ['00000.jpg', '00001.jpg', '00002.jpg']
    assert osp.isdir(osp.join(root, 'DAVIS/JPEGImages/480p/bear'))


def test_convert_malformed_expression_line(tmp_path):
    path = osp.join(str(tmp_path), 'bad.txt')
    with open(path, 'w') as f:
        f.write('bear "missing object id"\n')
    with pytest.raises(ValueError, match=r'bad\.txt:1'):
        load_tool().parse_expression_file(path)


@pytest.mark.parametrize('annotator,expected', [(0, ['0', '0', '4']),
                                                (3, ['3', '3', '7']),
                                                (None, None)])
def test_ref_davis_dataset(converted, annotator, expected):
    _, out, _ = converted
    dataset = RefDAVISDataset(
        data_root=out,
        annotator=annotator,
        pipeline=[
            dict(type='RVOSFrameSample', mode='test'),
            dict(type='LoadRVOSFrames'),
            dict(type='LoadRVOSAnnotations'),
            dict(type='PackRVOSInputs'),
        ])
    exp_ids = [dataset.get_data_info(i)['exp_id'] for i in range(len(dataset))]
    if expected is None:
        assert len(exp_ids) == 12
        return
    assert exp_ids == expected  # classic-car, dogs-jump obj 1, obj 2
    out_sample = dataset[2]  # dogs-jump, object 2
    sample = out_sample['data_samples']
    assert out_sample['inputs'].shape == (2, 3, H, W)
    assert sample.video_id == 'dogs-jump' and sample.obj_id == 2
    expected_mask = torch.from_numpy(davis_ids('dogs-jump', 1) == 2)
    assert torch.equal(sample.gt_instances.masks[1], expected_mask)
    assert sample.gt_instances.bboxes[1].tolist() == [10, 10, 20, 20]


def test_ref_davis_bad_annotator(converted):
    with pytest.raises(ValueError, match='annotator'):
        RefDAVISDataset(data_root=converted[1], annotator=4)
