# Copyright (c) OpenMMLab. All rights reserved.
"""tools/dataset_converters/refcoco_to_coco.py: a fake refer-toolkit
release converted and read back by RefCOCODataset, and the error paths."""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest

from dmformer.datasets import RefCOCODataset
from dmformer.testing import REPO_ROOT, load_script

TOOL = 'tools/dataset_converters/refcoco_to_coco.py'
converter = load_script(TOOL)

POLYGON = [[10., 20., 50., 20., 50., 60., 10., 60.]]
RLE = dict(size=[240, 320], counts='PPYo1')


def _instances():
    """instances.json of a fake release: 2 images, 3 annotations."""
    return dict(
        info=dict(description='fake refcoco'),
        licenses=[],
        images=[
            dict(
                id=581857,
                file_name='COCO_train2014_000000581857.jpg',
                height=240,
                width=320),
            dict(
                id=9,
                file_name='COCO_train2014_000000000009.jpg',
                height=480,
                width=640),
        ],
        annotations=[
            dict(
                id=16,
                image_id=581857,
                bbox=[10., 20., 40., 40.],
                segmentation=POLYGON,
                area=1600.,
                iscrowd=0,
                category_id=1),
            dict(
                id=17,
                image_id=581857,
                bbox=[100., 50., 30., 60.],
                segmentation=RLE,
                area=1500.,
                iscrowd=0,
                category_id=18),
            dict(
                id=90,
                image_id=9,
                bbox=[0., 0., 200., 100.],
                segmentation=[[0., 0., 200., 0., 200., 100., 0., 100.]],
                area=20000.,
                iscrowd=0,
                category_id=18),
        ],
        categories=[
            dict(id=1, name='person', supercategory='person'),
            dict(id=18, name='dog', supercategory='animal'),
        ])


def _sentence(sent_id, sent):
    return dict(
        sent_id=sent_id, sent=sent, raw=sent.upper() + '.',
        tokens=sent.split())


def _ref(ref_id, ann_id, image_id, split, sentences, category_id=1):
    return dict(
        ref_id=ref_id,
        ann_id=ann_id,
        image_id=image_id,
        split=split,
        sentences=sentences,
        sent_ids=list(range(len(sentences))),
        category_id=category_id,
        file_name=f'COCO_train2014_{image_id:012d}_{ann_id}.jpg')


def _refs():
    """train: 2 refs / 3 sentences on 2 images; val: 1 ref / 2 sentences;
    testA: 1 ref / 1 sentence."""
    return [
        _ref(0, 16, 581857, 'train',
             [_sentence(0, 'man on left'),
              _sentence(1, 'guy in red')]),
        _ref(1, 90, 9, 'train', [_sentence(2, 'big dog')], 18),
        _ref(2, 17, 581857, 'val',
             [_sentence(3, 'dog right'),
              _sentence(4, 'brown dog')], 18),
        _ref(3, 16, 581857, 'testA', [_sentence(5, 'left man')]),
    ]


def _write_release(root, name='refcoco', split_by='unc', refs=None,
                   instances=None):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / 'instances.json', 'w') as f:
        json.dump(_instances() if instances is None else instances, f)
    with open(folder / f'refs({split_by}).p', 'wb') as f:
        pickle.dump(_refs() if refs is None else refs, f, protocol=2)
    return folder


def _run(args):
    env = dict(os.environ)
    env.pop('DMFORMER_DEBUG', None)
    return subprocess.run([sys.executable, TOOL] + [str(a) for a in args],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          env=env,
                          timeout=300)


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_convert_and_load(tmp_path):
    folder = _write_release(tmp_path)
    proc = _run([tmp_path, '--datasets', 'refcoco'])
    assert proc.returncode == 0, proc.stderr
    assert 'train: 2 refs, 3 sentences, 2 images' in proc.stdout
    assert 'val: 1 refs, 2 sentences, 1 images' in proc.stdout
    # only the requested splits are written
    assert sorted(os.listdir(folder)) == [
        'instances.json', 'instances_refcoco_train.json',
        'instances_refcoco_val.json', 'refs(unc).p'
    ]

    train = _read(folder / 'instances_refcoco_train.json')
    assert train['categories'] == _instances()['categories']
    assert train['info'] == dict(description='fake refcoco')
    assert [img['id'] for img in train['images']] == [1, 2, 3]
    assert train['images'][0] == dict(
        file_name='COCO_train2014_000000581857.jpg',
        height=240,
        width=320,
        original_id=581857,
        id=1,
        caption='man on left',
        dataset_name='refcoco')
    assert [img['caption'] for img in train['images']
            ] == ['man on left', 'guy in red', 'big dog']
    assert [img['original_id']
            for img in train['images']] == [581857, 581857, 9]
    assert train['annotations'][2] == dict(
        segmentation=[[0., 0., 200., 0., 200., 100., 0., 100.]],
        area=20000.,
        iscrowd=0,
        bbox=[0., 0., 200., 100.],
        image_id=3,
        category_id=18,
        id=3,
        original_id=90)
    assert [ann['image_id'] for ann in train['annotations']] == [1, 2, 3]
    assert train['annotations'][0]['segmentation'] == POLYGON

    val = _read(folder / 'instances_refcoco_val.json')
    assert [img['caption'] for img in val['images']
            ] == ['dog right', 'brown dog']
    assert [ann['original_id'] for ann in val['annotations']] == [17, 17]
    assert val['annotations'][0]['segmentation'] == RLE

    dataset = RefCOCODataset(
        data_root=str(tmp_path),
        ann_file='refcoco/instances_refcoco_train.json',
        data_prefix=dict(img_path='train2014/'),
        pipeline=[])
    assert len(dataset) == 3
    infos = [dataset.get_data_info(i) for i in range(3)]
    assert [info['text'] for info in infos
            ] == ['man on left', 'guy in red', 'big dog']
    assert [info['image_id'] for info in infos] == [581857, 581857, 9]
    assert [info['obj_id'] for info in infos] == [1, 2, 3]
    assert infos[0]['gt_anns'] == [
        dict(bbox=[10., 20., 50., 60.], segmentation=POLYGON)
    ]
    assert infos[2]['gt_anns'][0]['bbox'] == [0., 0., 200., 100.]
    assert infos[0]['img_path'] == [
        osp.join(str(tmp_path), 'train2014',
                 'COCO_train2014_000000581857.jpg')
    ]
    assert infos[0]['dataset_name'] == 'refcoco'
    assert (infos[0]['height'], infos[0]['width']) == (240, 320)


def test_default_split_by_and_override(tmp_path, capsys):
    # refcocog reads refs(umd).p by default; there is no testA split
    _write_release(tmp_path, 'refcocog', 'umd')
    written = converter.convert_dataset(str(tmp_path), 'refcocog',
                                        ['train', 'testA', 'test'])
    assert sorted(written) == ['testA', 'train']
    assert 'test: no refs in this release, skipped' in capsys.readouterr().out
    testa = _read(written['testA'])
    assert [img['caption'] for img in testa['images']] == ['left man']
    assert testa['images'][0]['dataset_name'] == 'refcocog'

    # --split-by picks another refs file
    refs = [_ref(7, 90, 9, 'val', [_sentence(0, 'a dog')], 18)]
    _write_release(tmp_path, 'refcoco+', 'google', refs=refs)
    converter.main([
        str(tmp_path), '--datasets', 'refcoco+', '--splits', 'val',
        '--split-by', 'refcoco+=google'
    ])
    val = _read(tmp_path / 'refcoco+' / 'instances_refcoco+_val.json')
    assert [img['caption'] for img in val['images']] == ['a dog']
    with pytest.raises(ValueError, match='NAME=PARTITION'):
        converter.main([str(tmp_path), '--split-by', 'refcocog'])
    with pytest.raises(ValueError, match='not among --datasets'):
        converter.main([
            str(tmp_path), '--datasets', 'refcoco', '--split-by',
            'refcocog=google'
        ])


def test_empty_sentences_skipped(tmp_path):
    refs = [
        _ref(0, 16, 581857, 'train',
             [_sentence(0, '  '),
              _sentence(1, 'guy in red')])
    ]
    _write_release(tmp_path, refs=refs)
    written = converter.convert_dataset(str(tmp_path), 'refcoco', ['train'])
    train = _read(written['train'])
    assert [(img['id'], img['caption'])
            for img in train['images']] == [(1, 'guy in red')]
    assert train['annotations'][0]['image_id'] == 1


def test_missing_pickle_cli(tmp_path):
    folder = _write_release(tmp_path)
    os.remove(folder / 'refs(unc).p')
    proc = _run([tmp_path, '--datasets', 'refcoco'])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: ')
    assert 'refs(unc).p' in lines[0] and 'does not exist' in lines[0]
    assert not osp.exists(folder / 'instances_refcoco_train.json')


def test_missing_instances_cli(tmp_path):
    folder = _write_release(tmp_path)
    os.remove(folder / 'instances.json')
    proc = _run([tmp_path, '--datasets', 'refcoco'])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'error: Instances file {str(folder / "instances.json")!r} does '
        'not exist.'
    ]


@pytest.mark.parametrize('ref, match', [
    (_ref(5, 999, 581857, 'train', [_sentence(0, 'x')]),
     r'ref 5 \(entry 0\): ann_id 999 is not in .*instances\.json'),
    (_ref(5, 16, 12345, 'train', [_sentence(0, 'x')]),
     r'ref 5 \(entry 0\): image_id 12345 is not in .*instances\.json'),
    (_ref(5, 90, 581857, 'train', [_sentence(0, 'x')]),
     r'ann_id 90 is on image 9 .*not on image 581857'),
    (dict(ref_id=5, ann_id=16, image_id=581857, split='train'),
     r"has no \['sentences'\] field"),
    (_ref(5, 16, 581857, 'train', ['a string']),
     r'sentence 0: expected a dict with a "sent" string'),
])
def test_bad_refs(tmp_path, ref, match):
    _write_release(tmp_path, refs=[ref])
    with pytest.raises(ValueError, match=match):
        converter.convert_dataset(str(tmp_path), 'refcoco', ['train'])


def test_bad_files(tmp_path):
    folder = _write_release(tmp_path)
    # a pickle referring to a global is refused, not executed
    with open(folder / 'refs(unc).p', 'wb') as f:
        pickle.dump([dict(ref_id=0, split=os.getcwd)], f)
    with pytest.raises(ValueError, match='refusing to load the global'):
        converter.convert_dataset(str(tmp_path), 'refcoco')
    with open(folder / 'refs(unc).p', 'wb') as f:
        f.write(b'not a pickle')
    with pytest.raises(ValueError, match=r'Cannot read refs file .*unc\)\.p'):
        converter.convert_dataset(str(tmp_path), 'refcoco')
    with open(folder / 'refs(unc).p', 'wb') as f:
        pickle.dump({'refs': []}, f)
    with pytest.raises(ValueError, match='must hold a list of dicts'):
        converter.convert_dataset(str(tmp_path), 'refcoco')

    _write_release(tmp_path, instances=dict(images=[], annotations=[]))
    with pytest.raises(ValueError, match="list under key 'categories'"):
        converter.convert_dataset(str(tmp_path), 'refcoco')
    with open(folder / 'instances.json', 'w') as f:
        f.write('{')
    with pytest.raises(ValueError, match='not JSON'):
        converter.convert_dataset(str(tmp_path), 'refcoco')
    with pytest.raises(ValueError, match='dataset must be one of'):
        converter.convert_dataset(str(tmp_path), 'refclef')
    with pytest.raises(ValueError, match='split must be one of'):
        converter.convert_dataset(str(tmp_path), 'refcoco', ['testC'])
