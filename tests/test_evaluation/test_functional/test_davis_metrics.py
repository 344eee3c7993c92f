# Copyright (c) OpenMMLab. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from dmformer.evaluation.functional import (db_eval_boundary, db_eval_iou,
                                            db_statistics, disk, f_measure,
                                            seg2bmap)

REF_FILE = osp.join(
    osp.dirname(__file__), '..', '..', 'data', 'davis_toolkit_reference.json')
# the project's shared/ folder lies beside the repository (also in CI)
MASK_ROOT = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))),
    '..', 'shared', 'data', 'davis-masks')

needs_masks = pytest.mark.skipif(
    not osp.isdir(MASK_ROOT), reason='shared DAVIS masks not available')


@pytest.fixture(scope='module')
def reference():
    with open(REF_FILE) as f:
        return json.load(f)


def _load_video(method, video, frames):
    return np.stack([
        np.array(Image.open(osp.join(MASK_ROOT, method, video, f'{n}.png')))
        for n in frames
    ])


def test_disk_matches_skimage():
    # values of skimage.morphology.disk (scikit-image 0.26.0)
    np.testing.assert_array_equal(disk(0), [[1]])
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(
        disk(2), [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1],
                  [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(
        disk(1.5), [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    for radius, shape, total in [(3, (7, 7), 29), (8, (17, 17), 197),
                                 (8.0, (17, 17), 197), (10, (21, 21), 317),
                                 (2.5, (6, 6), 16)]:
        d = disk(radius)
        assert d.dtype == np.uint8
        assert d.shape == shape and int(d.sum()) == total


def test_seg2bmap_hand_checked():
    seg = np.zeros((4, 5), dtype=bool)
    seg[1:3, 1:4] = True
    expected = np.array([[1, 1, 1, 1, 0],
                         [1, 0, 0, 1, 0],
                         [1, 1, 1, 1, 0],
                         [0, 0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(seg2bmap(seg), expected)
    # last row / column only look east / south, bottom-right never set
    full = np.ones((3, 3), dtype=bool)
    assert not seg2bmap(full).any()
    corner = np.zeros((3, 3), dtype=bool)
    corner[2, 2] = True
    np.testing.assert_array_equal(
        seg2bmap(corner),
        [[0, 0, 0], [0, 1, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match='2-D'):
        seg2bmap(np.zeros((2, 3, 3)))


def test_db_eval_iou_values_and_edge_cases():
    gt = np.zeros((2, 4, 4), dtype=np.uint8)
    pred = np.zeros((2, 4, 4), dtype=np.uint8)
    gt[0, :2, :2] = 1  # 4 px
    pred[0, :2, :3] = 1  # 6 px, 4 shared
    j = db_eval_iou(gt, pred)
    # frame 1: both empty -> 1
    np.testing.assert_allclose(j, [4 / 6, 1.])
    assert isinstance(db_eval_iou(gt[0], pred[0]), float)
    assert db_eval_iou(gt[1], pred[1]) == 1.
    # only prediction -> 0
    assert db_eval_iou(np.zeros((3, 3)), np.ones((3, 3))) == 0.
    # void pixels are removed from both intersection and union
    void = np.zeros_like(gt)
    void[0, :, 2] = 1
    np.testing.assert_allclose(db_eval_iou(gt, pred, void), [1., 1.])
    with pytest.raises(ValueError, match='do not match'):
        db_eval_iou(gt, pred[:, :3])
    with pytest.raises(ValueError, match='void_pixels'):
        db_eval_iou(gt, pred, void[:1])


def test_f_measure_edge_cases():
    h, w = 60, 80
    gt = np.zeros((h, w), dtype=bool)
    gt[10:40, 20:50] = True
    empty = np.zeros_like(gt)
    assert f_measure(gt, gt) == 1.
    assert f_measure(empty, empty) == 1.  # both empty
    assert f_measure(empty, gt) == 0.  # P=1, R=0
    assert f_measure(gt, empty) == 0.  # P=0, R=1
    # bound_pix = ceil(0.008 * 100) = 1: a 1 px shift is still matched
    shifted = np.roll(gt, 1, axis=1)
    assert f_measure(shifted, gt) == 1.
    # a 5 px shift: vertical edges (30 px each side) no longer match, but
    # the horizontal edges match except their 5 px not covered by the other
    far = np.roll(gt, 5, axis=1)
    fg_b, gt_b = seg2bmap(far), seg2bmap(gt)
    assert fg_b.sum() == gt_b.sum()
    value = f_measure(far, gt)
    assert 0 < value < 1
    # bound_th >= 1 is an absolute number of pixels
    assert f_measure(far, gt, bound_th=5) == 1.
    with pytest.raises(ValueError, match='do not match'):
        f_measure(gt, gt[:, :5])


def test_db_eval_boundary_shapes():
    gt = np.zeros((3, 20, 20), dtype=bool)
    gt[:, 5:15, 5:15] = True
    pred = gt.copy()
    pred[2] = False
    f = db_eval_boundary(gt, pred)
    assert f.shape == (3, )
    np.testing.assert_allclose(f, [1., 1., 0.])
    assert isinstance(db_eval_boundary(gt[0], pred[0]), float)
    with pytest.raises(ValueError, match='4 dimensions'):
        db_eval_boundary(gt[None], pred[None])


@needs_masks
def test_real_masks_match_toolkit(reference):
    """Per-frame J/F and statistics of the official toolkit to 1e-6."""
    num_objects = 0
    for video, info in reference['videos'].items():
        gt = _load_video('osvos', video, info['frames'])
        res = _load_video('rvos', video, info['frames'])
        assert list(gt.shape[1:]) == info['shape']
        for obj in info['objects']:
            gt_k = gt == obj['obj_id']
            res_k = res == obj['matched_pred_id']
            j = db_eval_iou(gt_k, res_k)
            f = db_eval_boundary(gt_k, res_k)
            np.testing.assert_allclose(j, obj['J'], atol=1e-6, rtol=0)
            np.testing.assert_allclose(f, obj['F'], atol=1e-6, rtol=0)
            np.testing.assert_allclose(
                db_statistics(j), obj['J_stats'], atol=1e-6, rtol=0)
            np.testing.assert_allclose(
                db_statistics(f), obj['F_stats'], atol=1e-6, rtol=0)
            num_objects += 1
    assert num_objects == reference['global_unsupervised']['num_objects']


@needs_masks
def test_void_and_absolute_threshold_match_toolkit(reference):
    case = reference['void_case']
    frames = reference['videos'][case['video']]['frames']
    gt = _load_video('osvos', case['video'], frames) == case['gt_id']
    res = _load_video('rvos', case['video'], frames) == case['pred_id']
    void = np.zeros_like(gt)
    void[:, 200:260, :] = True
    void[:, :, 400:430] = True
    np.testing.assert_allclose(
        db_eval_iou(gt, res, void), case['J'], atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        db_eval_boundary(gt, res, void), case['F'], atol=1e-6, rtol=0)
    case = reference['bound_th_3px_case']
    np.testing.assert_allclose(
        db_eval_boundary(gt, res, bound_th=case['bound_th']),
        case['F'],
        atol=1e-6,
        rtol=0)


def test_statistics_match_toolkit(reference):
    for case in reference['statistics_cases']:
        values = np.array(
            [np.nan if v is None else v for v in case['values']])
        np.testing.assert_allclose(
            db_statistics(values), case['stats'], atol=1e-6, rtol=0)


def test_statistics_hand_checked_and_long_videos():
    # N=5: ids = [0, 1, 2, 3, 4] -> bins [0:2], [1:3], [2:4], [3:5]
    m, o, d = db_statistics(np.array([1., 0.8, 0.6, 0.2, 0.]))
    assert m == pytest.approx(0.52)
    assert o == pytest.approx(0.6)
    assert d == pytest.approx(0.9 - 0.1)
    # NaN frames are skipped by the mean but count as misses in the recall
    m, o, _ = db_statistics(np.array([1., np.nan, 0.]))
    assert m == pytest.approx(0.5) and o == pytest.approx(1 / 3)

    # 300 frames: first quarter 1, rest 0. The toolkit's uint8 indices wrap
    # (299 -> 43), here bins are [0:76], [75:151], [150:225], [224:300].
    values = np.zeros(300)
    values[:75] = 1.
    m, o, d = db_statistics(values)
    assert m == pytest.approx(0.25) and o == pytest.approx(0.25)
    assert d == pytest.approx(75 / 76 - 0.)
    # 256 frames, where the toolkit's last bin becomes empty (NaN decay)
    values = np.linspace(1, 0, 256)
    _, _, d = db_statistics(values)
    ids = [0, 64, 128, 191, 255]
    expected = values[ids[0]:ids[1] + 1].mean() - values[ids[3]:].mean()
    assert d == pytest.approx(expected)
    assert np.isfinite(d)

    with pytest.raises(ValueError, match='non-empty'):
        db_statistics(np.array([]))
