# Copyright (c) OpenMMLab. All rights reserved.
"""The subject label tool on the layouts of every dataset the paper
configs train on (Ref-YouTube-VOS, MeViS, A2D-Sentences, RefCOCO), with a
fake teacher whose votes the tests plan, and the dataset classes reading
the written labels back."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from dmformer.apis.subject_labels import (ReferentFrames, default_ann_files,
                                          detect_dataset,
                                          generate_subject_labels,
                                          subject_label_path)
from dmformer.datasets import (A2DSentencesDataset, LoadSubjectSpan,
                               MeViSDataset, RefCOCODataset,
                               RefYouTubeVOSDataset)
from dmformer.datasets.transforms import loading
from dmformer.testing import REPO_ROOT, load_script
from dmformer.testing import real_layouts as layouts
from dmformer.utils.noun_chunks import extract_noun_chunks

TOOL = 'tools/misc/gen_subject_labels.py'


@pytest.fixture(autouse=True)
def _scope_and_cache():
    init_default_scope('dmformer')
    loading._MASK_DICTS.clear()
    yield
    loading._MASK_DICTS.clear()


def xyxy(box):
    """A (y1, y2, x1, x2) box of :mod:`dmformer.testing.real_layouts` as
    float xyxy."""
    y1, y2, x1, x2 = box
    return [float(x1), float(y1), float(x2), float(y2)]


def hull(boxes):
    arr = np.array(boxes, dtype=np.float64)
    return [*arr[:, :2].min(0), *arr[:, 2:].max(0)]


class PlannedTeacher:
    """Grounds, in every frame, chunk ``c`` on the box of object ``o`` for
    each ``(c, o)`` of ``plan[text]`` where ``objects(path)`` (the boxes of
    the objects in that frame) has ``o``; records its calls."""

    def __init__(self, objects, plan, score=0.9):
        self.objects = objects
        self.plan = plan
        self.score = score
        self.calls = []

    def predict(self, img_paths, text, chunk_spans):
        self.calls.append((list(img_paths), text, list(chunk_spans)))
        preds = []
        for path in img_paths:
            assert osp.isfile(path), path
            boxes = self.objects(path)
            dets = [(boxes[o], c) for c, o in self.plan.get(text, [])
                    if o in boxes]
            preds.append(
                dict(
                    bboxes=np.array([b for b, _ in dets],
                                    dtype=np.float64).reshape(-1, 4),
                    labels=np.array([c for _, c in dets], dtype=np.int64),
                    scores=np.full(len(dets), self.score)))
        return preds

    def frames_of(self, text):
        """Frame names given to the teacher for ``text``, per call."""
        return [[osp.splitext(osp.basename(p))[0] for p in paths]
                for paths, t, _ in self.calls if t == text]


def spans_by_key(dataset):
    """``{(video_id, exp_id): subject_span}`` of every data info, and the
    LoadSubjectSpan output of each."""
    spans, targets = {}, {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        key = (info['video_id'], info['exp_id'])
        spans[key] = info['subject_span']
        out = LoadSubjectSpan()(dict(info))
        targets[key] = (out['gt_subject_span'].tolist(), out['subject_source'])
    return spans, targets


def first_chunk(text):
    chunks = extract_noun_chunks(text)
    return list(chunks[0]) if chunks else [0, len(text)]


# ----------------------------------------------------------------------
# Ref-YouTube-VOS
# ----------------------------------------------------------------------
YT_VIDEO = 'a3f5e1c7b9'
YT_MAN = 'a man wearing a hat, on the left.'  # 'a man', 'a hat', 'the left'
YT_DOG = 'the dog running'


def ytvos_objects(path):
    """Boxes of the objects visible in a train frame of the release."""
    video = osp.basename(osp.dirname(path))
    spec = layouts._YTVOS_TRAIN[video]
    k = [f'{n:05d}'
         for n in spec['frames']].index(osp.splitext(osp.basename(path))[0])
    return {
        obj_id: xyxy(boxes[k])
        for obj_id, (_, boxes) in spec['objects'].items()
        if boxes[k] is not None
    }


def test_ref_youtube_vos_teacher_labels(tmp_path):
    root = str(tmp_path / 'ref-youtube-vos')
    layouts.write_ref_ytvos_release(root)
    teacher = PlannedTeacher(
        ytvos_objects,
        {
            # 'a hat' on the man (object 1), 'a man' on the dog: only the
            # box of obj_id gives 'a hat'
            YT_MAN: [(1, 1), (0, 2)],
            YT_DOG: [(0, 2)],
        })
    tool = load_script(TOOL)
    out, = tool.main([root], teacher=teacher)
    assert out == osp.join(root, 'meta_expressions', 'train',
                           'subject_labels.json')
    with open(out) as f:
        labels = json.load(f)
    assert labels == {
        YT_VIDEO: {
            '0': [14, 19],  # 'a hat' (teacher)
            '1': [0, 7],  # 'the dog' (teacher, its only chunk)
            '2': [0, 5],  # 'a man': no detection -> parser
        },
        # 'a skateboard, rolling.' has no noun chunk: the whole sentence
        'c81e728d9d': {
            '0': [0, 22]
        },
    }
    # the dog is visible from the third listed frame on; the caption
    # without chunks is not given to the teacher
    assert teacher.frames_of(YT_DOG) == [['00010', '00015', '00020', '00025']]
    assert teacher.frames_of(YT_MAN) == [[
        '00000', '00005', '00010', '00015', '00020', '00025'
    ]]
    assert len(teacher.calls) == 3
    # the paper config's dataset reads them ('auto', anchor samples)
    ds = RefYouTubeVOSDataset(data_root=root, split='train', pipeline=[])
    spans, targets = spans_by_key(ds)
    assert spans[(YT_VIDEO, '0')] == [14, 19]
    assert targets[(YT_VIDEO, '0')] == ([14, 19], 'teacher')
    assert targets[('c81e728d9d', '0')] == ([0, 22], 'teacher')
    # at most 2 frames per expression, spread over the visible ones
    teacher.calls.clear()
    generate_subject_labels(root, teacher=teacher, max_frames=2)
    assert teacher.frames_of(YT_DOG) == [['00010', '00025']]


# ----------------------------------------------------------------------
# MeViS
# ----------------------------------------------------------------------
MV_VIDEO = '7f2a9c04e1b3'
MV_CAPTIONS = {
    '0': 'the bird flying away from the cat',  # 'the bird', 'the cat'
    '1': 'two birds flying over the trees',  # 'two birds', 'the trees'
    '2': 'the cat jumping over the wall',  # no target
}


def mevis_objects(path):
    """Boxes of the train objects in a frame, and 'both': their union."""
    spec = layouts._MEVIS['train'][MV_VIDEO]
    k = int(osp.splitext(osp.basename(path))[0])
    boxes = {
        i: xyxy(obj[k])
        for i, obj in enumerate(spec['objects']) if obj[k] is not None
    }
    if len(boxes) == 2:
        boxes['both'] = hull(list(boxes.values()))
    return boxes


def write_mevis(root):
    layouts.write_mevis_release(root)
    path = osp.join(root, 'train', 'meta_expressions.json')
    with open(path) as f:
        meta = json.load(f)
    for exp_id, caption in MV_CAPTIONS.items():
        meta['videos'][MV_VIDEO]['expressions'][exp_id]['exp'] = caption
    with open(path, 'w') as f:
        json.dump(meta, f)


def test_mevis_teacher_labels(tmp_path):
    root = str(tmp_path / 'mevis')
    write_mevis(root)
    teacher = PlannedTeacher(
        mevis_objects,
        {
            MV_CAPTIONS['0']: [(1, 0), (0, 1)],
            # 'two birds' on bird 0 alone: frames 0-1, where bird 1 is
            # absent and the union is bird 0; 'the trees' on both birds:
            # frames 2-4. Only the union of the anno_ids gives 3 votes
            # to 'the trees'.
            MV_CAPTIONS['1']: [(0, 0), (1, 'both')],
            MV_CAPTIONS['2']: [(1, 0), (1, 1)],
        })
    tool = load_script(TOOL)
    out, = tool.main([root], teacher=teacher)
    assert out == osp.join(root, 'train', 'subject_labels.json')
    with open(out) as f:
        labels = json.load(f)
    assert labels == {MV_VIDEO: {'0': [26, 33], '1': [22, 31], '2': [0, 7]}}
    # the no-target expression gets no teacher vote
    assert teacher.frames_of(MV_CAPTIONS['2']) == []
    assert teacher.frames_of(
        MV_CAPTIONS['1']) == [['00000', '00001', '00002', '00003', '00004']]
    ds = MeViSDataset(data_root=root, split='train', pipeline=[])
    spans, targets = spans_by_key(ds)
    assert spans == {(MV_VIDEO, k): v for k, v in labels[MV_VIDEO].items()}
    assert targets[(MV_VIDEO, '1')] == ([22, 31], 'teacher')
    # the split without masks: parser labels only
    labels, stats = generate_subject_labels(root, split='valid')
    assert stats['num_parser'] == 3 and labels['f1e2d3c4b5a6'] == {
        '0': first_chunk('a person turning around')
    }
    with pytest.raises(ValueError, match='no mask_dict.json'):
        generate_subject_labels(root, split='valid', teacher=teacher)


# ----------------------------------------------------------------------
# A2D-Sentences
# ----------------------------------------------------------------------
A2D_VIDEO = '-3Ttm4-ZsXM'
A2D_MAN = 'man in a black shirt, running'  # 'man', 'a black shirt'
A2D_DOG = 'a dog rolling on the grass'  # 'a dog', 'the grass'


def a2d_objects(path):
    """Boxes of the instances annotated in a frame (none elsewhere)."""
    video = osp.basename(osp.dirname(path))
    frame = int(osp.splitext(osp.basename(path))[0])
    annotated = layouts._A2D[video]['annotated'].get(frame, {})
    return {i: xyxy(box) for i, box in annotated.items()}


@pytest.fixture
def a2d_root(tmp_path):
    pytest.importorskip('h5py')
    root = str(tmp_path / 'a2d_sentences')
    layouts.write_a2d_release(root)
    load_script(
        'tools/dataset_converters/a2d_sentences_to_json.py').convert_a2d(root)
    return root


def test_a2d_teacher_labels(a2d_root):
    teacher = PlannedTeacher(a2d_objects, {
        A2D_MAN: [(1, 0), (0, 1)],
        A2D_DOG: [(1, 1), (0, 0)],
    })
    tool = load_script(TOOL)
    out, = tool.main([a2d_root], teacher=teacher)
    assert out == osp.join(a2d_root, 'subject_labels.json')
    with open(out) as f:
        labels = json.load(f)
    # exp_id = '<annotated frame>_<instance id>'
    assert labels == {
        A2D_VIDEO: {
            '00003_0': [7, 20],
            '00006_0': [7, 20],
            '00003_1': [17, 26]
        }
    }
    # the teacher sees the annotated frame only
    assert sorted(teacher.frames_of(A2D_MAN)) == [['00003'], ['00006']]
    assert teacher.frames_of(A2D_DOG) == [['00003']]
    ds = A2DSentencesDataset(data_root=a2d_root, split='train', pipeline=[])
    spans, targets = spans_by_key(ds)
    assert spans == {(A2D_VIDEO, k): v for k, v in labels[A2D_VIDEO].items()}
    assert targets[(A2D_VIDEO, '00003_1')] == ([17, 26], 'teacher')
    # the test list reads the same file; its videos have no label there
    ds = A2DSentencesDataset(data_root=a2d_root, split='test', pipeline=[])
    assert spans_by_key(ds)[0] == {('EadxBPmQvtg', '00002_0'): None}


def test_a2d_key_shared_by_two_captions(a2d_root):
    with open(osp.join(a2d_root, default_ann_files('a2d', a2d_root)[0])) as f:
        entries = json.load(f)
    entries.append(['a man running', A2D_VIDEO, 3, 0])
    entries.append([A2D_DOG, A2D_VIDEO, 3, 1])  # an exact repeat
    with open(osp.join(a2d_root, 'dup.json'), 'w') as f:
        json.dump(entries, f)
    labels, stats = generate_subject_labels(
        a2d_root, dataset='a2d', ann_file='dup.json')
    assert stats == dict(
        num_expressions=3, num_teacher=0, num_parser=2, num_ambiguous=1)
    assert labels == {A2D_VIDEO: {'00006_0': [0, 3], '00003_1': [0, 5]}}


# ----------------------------------------------------------------------
# RefCOCO / RefCOCO+ / RefCOCOg
# ----------------------------------------------------------------------
H, W = 48, 64
# xyxy boxes of the objects of the image; the box of object 3 leaves the
# image (COCO xywh [50, 30, 30, 30], clipped to [50, 30, 64, 48])
RC_BOXES = {10: [8, 10, 40, 30], 11: [44, 2, 60, 20], 3: [50, 30, 64, 48]}
RC_CUP = 'red box next to the cup'  # 'red box', 'the cup'
RC_THING = 'the bright thing on a table'  # 'the bright thing', 'a table'


def rect(x1, y1, x2, y2):
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def write_refcoco(root, name, images, annotations):
    path = osp.join(root, name, f'instances_{name}_train.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations), f)
    return path


def refcoco_tree(root):
    """``root`` = data/coco with one image, a RefCOCO train file in the
    MDETR format (plus an entry in the annotation-sentences format) and a
    RefCOCO+ train file."""
    os.makedirs(osp.join(root, 'train2014'))
    file_name = 'COCO_train2014_000000000001.jpg'
    assert cv2.imwrite(
        osp.join(root, 'train2014', file_name), np.full((H, W, 3), 90,
                                                        np.uint8))
    image = dict(height=H, width=W, file_name=file_name, original_id=1)

    def ann(ann_id, image_id, **kwargs):
        x1, y1, x2, y2 = RC_BOXES[ann_id]
        bbox = [50, 30, 30, 30] if ann_id == 3 else [x1, y1, x2 - x1, y2 - y1]
        return dict(
            id=ann_id,
            image_id=image_id,
            bbox=bbox,
            iscrowd=0,
            category_id=1,
            segmentation=rect(x1, y1, x2, y2),
            **kwargs)

    write_refcoco(root, 'refcoco', [
        dict(image, id=0, caption='Red box next to the CUP'),
        dict(image, id=1, caption=RC_THING),
        dict(image, id=7),
    ], [
        ann(10, 0),
        ann(3, 1),
        ann(11, 7, sentences=[dict(sent='the cup'), RC_CUP]),
    ])
    write_refcoco(root, 'refcoco+', [
        dict(image, id=0, caption='the cup left of a red box'),
    ], [ann(11, 0)])


def refcoco_objects(path):
    return dict(RC_BOXES)


def test_refcoco_teacher_labels(tmp_path):
    root = str(tmp_path / 'coco')
    refcoco_tree(root)
    assert detect_dataset(root) == 'refcoco'
    teacher = PlannedTeacher(
        refcoco_objects,
        {
            # 'the cup' on the red box (entry 0, object 10) and 'red box'
            # on the cup (object 11): entry 0 -> 'the cup', the sentence
            # of object 11 -> 'red box'
            RC_CUP: [(1, 10), (0, 11)],
            # 'a table' on the clipped box of object 3
            RC_THING: [(1, 3)],
            'the cup left of a red box': [(1, 11)],
        })
    tool = load_script(TOOL)
    outs = tool.main([root], teacher=teacher)
    assert outs == [
        osp.join(root, 'refcoco', 'instances_refcoco_train_subject_labels'
                 '.json'),
        osp.join(root, 'refcoco+', 'instances_refcoco+_train_subject_labels'
                 '.json')
    ]
    with open(outs[0]) as f:
        labels = json.load(f)
    # MDETR entries: video_id = entry id, exp_id = '0'; annotation
    # sentences: '<image>_<annotation>' and the sentence index
    assert labels == {
        '0': {
            '0': [16, 23]
        },
        '1': {
            '0': [20, 27]
        },
        '7_11': {
            '0': [0, 7],
            '1': [0, 7]
        },
    }
    with open(outs[1]) as f:
        assert json.load(f) == {'0': {'0': [16, 25]}}
    # the teacher sees the image, once per expression
    assert [len(paths) for paths, _, _ in teacher.calls] == [1] * 5
    for name, out in zip(('refcoco', 'refcoco+'), outs):
        with open(out) as f:
            labels = json.load(f)
        ds = RefCOCODataset(
            data_root=root,
            ann_file=f'{name}/instances_{name}_train.json',
            data_prefix=dict(img_path='train2014/'),
            pipeline=[])
        spans, targets = spans_by_key(ds)
        assert spans == {
            (v, e): span
            for v, exps in labels.items()
            for e, span in exps.items()
        }
        assert all(targets[key] == (span, 'teacher')
                   for key, span in spans.items())
    # a val file beside it (same entry ids) does not read the train labels
    os.rename(
        osp.join(root, 'refcoco+', 'instances_refcoco+_train.json'),
        osp.join(root, 'refcoco', 'instances_refcoco_val.json'))
    ds = RefCOCODataset(
        data_root=root,
        ann_file='refcoco/instances_refcoco_val.json',
        data_prefix=dict(img_path='train2014/'),
        pipeline=[])
    assert ds.get_data_info(0)['subject_span'] is None


def test_refcoco_single_file_and_errors(tmp_path):
    root = str(tmp_path / 'coco')
    refcoco_tree(root)
    tool = load_script(TOOL)
    out = str(tmp_path / 'labels.json')
    assert tool.main([
        root, '--dataset', 'refcoco', '--ann-file',
        'refcoco+/instances_refcoco+_train.json', '--out', out
    ]) == [out]
    with open(out) as f:
        assert json.load(f) == {'0': {'0': [0, 7]}}  # parser: 'the cup'
    with pytest.raises(ValueError, match='--out names one file but 2'):
        tool.main([root, '--out', out])
    with pytest.raises(ValueError, match='need the annotation file'):
        generate_subject_labels(root, dataset='refcoco')
    with pytest.raises(FileNotFoundError, match='No RefCOCO annotation'):
        default_ann_files('refcoco', root, 'val')
    # the image is not the size the annotation file says
    assert cv2.imwrite(
        osp.join(root, 'train2014', 'COCO_train2014_000000000001.jpg'),
        np.zeros((H + 1, W, 3), np.uint8))
    with pytest.raises(ValueError, match=r'has size \(49, 64\)'):
        generate_subject_labels(
            root,
            dataset='refcoco',
            ann_file='refcoco+/instances_refcoco+_train.json',
            teacher=PlannedTeacher(refcoco_objects, {}))


# ----------------------------------------------------------------------
# all layouts: detection, parser fallback, errors
# ----------------------------------------------------------------------
def paper_dataset(dataset, root, ann_file):
    """The train dataset of a paper config (subject labels 'auto')."""
    if dataset == 'refcoco':
        return RefCOCODataset(
            data_root=root,
            ann_file=ann_file,
            data_prefix=dict(img_path='train2014/'),
            pipeline=[])
    cls = dict(a2d=A2DSentencesDataset, mevis=MeViSDataset)
    cls['ref-youtube-vos'] = RefYouTubeVOSDataset
    return cls[dataset](data_root=root, split='train', pipeline=[])


def test_detect_and_parser_labels_of_every_layout(tmp_path, a2d_root):
    roots = dict(
        a2d=a2d_root,
        mevis=str(tmp_path / 'mevis'),
        refcoco=str(tmp_path / 'coco'))
    roots['ref-youtube-vos'] = str(tmp_path / 'ytvos')
    layouts.write_ref_ytvos_release(roots['ref-youtube-vos'])
    layouts.write_mevis_release(roots['mevis'])
    refcoco_tree(roots['refcoco'])
    tool = load_script(TOOL)
    for dataset, root in roots.items():
        assert detect_dataset(root) == dataset
        ann_file = default_ann_files(dataset, root)[0]
        out, = tool.main([root, '--ann-file', ann_file])
        assert out == subject_label_path(dataset, root, ann_file)
        with open(out) as f:
            labels = json.load(f)
        data = paper_dataset(dataset, root, ann_file)
        # every expression of the dataset class is labelled with the first
        # spaCy chunk of its caption (the paper configs' candidates)
        num = 0
        for i in range(len(data)):
            info = data.get_data_info(i)
            assert info['subject_span'] == first_chunk(info['text'])
            assert labels[info['video_id']][info['exp_id']] == \
                info['subject_span']
            num += 1
        assert num > 0
    # several layouts in one folder
    layouts.write_mevis_release(roots['ref-youtube-vos'])
    with pytest.raises(ValueError, match='several datasets'):
        detect_dataset(roots['ref-youtube-vos'])
    # unknown split of a dataset class
    with pytest.raises(ValueError, match="Unknown a2d split 'valid'"):
        default_ann_files('a2d', a2d_root, 'valid')
    with pytest.raises(ValueError, match='Unknown dataset'):
        ReferentFrames('davis')


def test_referent_errors(tmp_path):
    root = str(tmp_path / 'ytvos')
    layouts.write_ref_ytvos_release(root)
    teacher = PlannedTeacher(ytvos_objects, {})
    # valid expressions carry no obj_id
    with pytest.raises(ValueError, match='has no obj_id'):
        generate_subject_labels(root, split='valid', teacher=teacher)
    os.remove(osp.join(root, 'train', 'JPEGImages', YT_VIDEO, '00005.jpg'))
    with pytest.raises(FileNotFoundError, match='00005.jpg'):
        generate_subject_labels(root, teacher=teacher)


def test_cli_one_line_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop('DMFORMER_DEBUG', None)
    proc = subprocess.run(
        [sys.executable,
         osp.join(REPO_ROOT, TOOL),
         str(tmp_path)],
        capture_output=True,
        text=True,
        env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        'error: Cannot tell the dataset of'), proc.stderr
