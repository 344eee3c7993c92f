# Copyright (c) OpenMMLab. All rights reserved.
"""MeViS J&F pinned to hand-computed values, from a ``mask_dict.json``
through MeViSDataset / LoadMeViSAnnotations to the metrics.

The organisers' formula: per expression, J and F are the means over all
its frames of the DAVIS measures against the union of its objects' masks
(an empty mask for an expression of no object; both masks empty scores
J = F = 1, a non-empty prediction against an empty target J = F = 0); J
and F are means over expressions and J&F = (J + F) / 2.

Frames are 24 x 32, so the boundary tolerance is ceil(0.008 * 40) = 1
pixel (a plus-shaped dilation). Boxes (rows, columns, inclusive):

- A: rows 2-5, columns 2-9 (32 pixels); its boundary (``seg2bmap``, half
  a pixel up-left) is the outline of rows 1-5 x columns 1-9: 24 pixels.
- L, the left half of A: rows 2-5, columns 2-5 (16 pixels); boundary the
  outline of rows 1-5 x columns 1-5: 16 pixels.
- B: rows 12-15, columns 20-27 (32 pixels), far from A; boundary 24.
- C: rows 16-19, columns 4-7, a prediction where there is no target.

Video ``v`` has 3 frames; object A (anno 0) is visible in frames 0 and 2
(``null`` in frame 1), object B (anno 1) in all frames.

Expression 0 (A): prediction L, empty, empty.
  frame 0: J = 16 / 32 = 1/2. Precision: the L outline lies on the A
  outline except column 5, rows 2-4, of which rows 2 and 4 touch rows 1
  and 5 of the A outline: 15/16. Recall: the A outline pixels within 1
  pixel of the L outline are rows 1 and 5, columns 1-6, and column 1,
  rows 2-4: 15/24. F = 2 PR / (P + R) = 3/4.
  frame 1 (both empty): J = F = 1. frame 2 (target A, prediction empty):
  J = 0, F = 0 (P = 1, R = 0).
  J = 1/2, F = 7/12.
Expression 1 (A and B): prediction A|B, B, A.
  frames 0, 1: exact, J = F = 1. frame 2: J = 32 / 64 = 1/2; the A
  outline is half of the target's boundary: P = 1, R = 1/2, F = 2/3.
  J = 5/6, F = 8/9.
Expression 2 (no object): prediction empty, empty, C.
  frames 0, 1: both empty, J = F = 1; frame 2: J = 0, F = 0 (P = 0,
  R = 1). J = F = 2/3.
Means: J = (1/2 + 5/6 + 2/3) / 3 = 2/3, F = (7/12 + 8/9 + 2/3) / 3 =
77/108, J&F = (2/3 + 77/108) / 2 = 149/216.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from dmformer.datasets import MeViSDataset
from dmformer.datasets.transforms import loading
from dmformer.evaluation import MeViSSubmissionMetric, RVOSJFMetric
from dmformer.testing.real_layouts import box_mask, rle_encode

init_default_scope('dmformer')

SIZE = (24, 32)
A = (2, 6, 2, 10)
L = (2, 6, 2, 6)
B = (12, 16, 20, 28)
C = (16, 20, 4, 8)
FRAMES = ['00000', '00001', '00002']
# exp_id -> predicted boxes per frame (None: empty)
PREDICTIONS = {
    '0': [[L], [], []],
    '1': [[A, B], [B], [A]],
    '2': [[], [], [C]],
}
# exp_id -> (J, F) by hand (module docstring)
EXPECTED = {'0': (1 / 2, 7 / 12), '1': (5 / 6, 8 / 9), '2': (2 / 3, 2 / 3)}
J_ALL, F_ALL = 2 / 3, 77 / 108


def write_valid_u(root: str) -> None:
    """The ``valid_u`` split of the module docstring."""
    img_dir = osp.join(root, 'valid_u', 'JPEGImages', 'v')
    os.makedirs(img_dir)
    for name in FRAMES:
        cv2.imwrite(osp.join(img_dir, name + '.jpg'),
                    np.full((*SIZE, 3), 128, np.uint8))
    tracks = {
        '0': [rle_encode(box_mask(SIZE, A)), None,
              rle_encode(box_mask(SIZE, A))],
        '1': [rle_encode(box_mask(SIZE, B))] * 3,
    }
    expressions = {
        '0': dict(exp='the bird on the left', obj_id=[0], anno_id=[0]),
        '1': dict(exp='the two birds', obj_id=[0, 1], anno_id=[0, 1]),
        '2': dict(exp='the dog running', obj_id=[], anno_id=[]),
    }
    with open(osp.join(root, 'valid_u', 'mask_dict.json'), 'w') as f:
        json.dump(tracks, f)
    with open(osp.join(root, 'valid_u', 'meta_expressions.json'), 'w') as f:
        json.dump(
            dict(videos=dict(v=dict(expressions=expressions,
                                    frames=FRAMES))), f)


@pytest.fixture
def samples(tmp_path):
    """The data samples of the dataset, with the predictions set."""
    loading._MASK_DICTS.clear()
    write_valid_u(str(tmp_path))
    ds = MeViSDataset(
        data_root=str(tmp_path),
        split='valid_u',
        test_mode=True,
        pipeline=[
            dict(type='RVOSFrameSample', mode='test'),
            dict(type='LoadRVOSFrames'),
            dict(type='LoadMeViSAnnotations', skip_unannotated=True),
            dict(type='PackRVOSInputs'),
        ])
    out = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        pred = np.stack([
            np.any([box_mask(SIZE, b) for b in boxes] +
                   [np.zeros(SIZE, np.uint8)],
                   axis=0) for boxes in PREDICTIONS[sample.exp_id]
        ])
        sample.pred_instances = InstanceData(masks=torch.from_numpy(pred))
        out.append(sample)
    yield out
    loading._MASK_DICTS.clear()


def test_ground_truth_from_mask_dict(samples):
    gts = {s.exp_id: s.gt_instances.masks.numpy() for s in samples}
    a, b = box_mask(SIZE, A).astype(bool), box_mask(SIZE, B).astype(bool)
    empty = np.zeros(SIZE, bool)
    np.testing.assert_array_equal(gts['0'], [a, empty, a])
    np.testing.assert_array_equal(gts['1'], [a | b, b, a | b])
    np.testing.assert_array_equal(gts['2'], [empty] * 3)


def test_rvos_jf_metric_hand_values(samples, tmp_path):
    per_exp = str(tmp_path / 'per_expression.json')
    metric = RVOSJFMetric(prefix='mevis', per_expression_file=per_exp)
    metric.process({}, [s.to_dict() for s in samples])
    result = metric.evaluate(len(samples))
    assert result['mevis/num_expressions'] == 3
    assert result['mevis/J'] == pytest.approx(100 * J_ALL)
    assert result['mevis/F'] == pytest.approx(100 * F_ALL)
    assert result['mevis/J&F'] == pytest.approx(100 * 149 / 216)
    with open(per_exp) as f:
        table = json.load(f)['v']
    for exp_id, (j, f) in EXPECTED.items():
        assert table[exp_id]['J'] == pytest.approx(j), exp_id
        assert table[exp_id]['F'] == pytest.approx(f), exp_id


def test_submission_metric_scores_the_same(samples, tmp_path):
    metric = MeViSSubmissionMetric(outfile_prefix=str(tmp_path / 'out'))
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['mevis/J'] == pytest.approx(100 * J_ALL)
    assert result['mevis/F'] == pytest.approx(100 * F_ALL)
    assert result['mevis/J&F'] == pytest.approx(100 * 149 / 216)
    # the no-target expression's prediction is written like the others
    assert osp.isfile(
        osp.join(str(tmp_path), 'out', 'Annotations', 'v', '2',
                 '00002.png'))
