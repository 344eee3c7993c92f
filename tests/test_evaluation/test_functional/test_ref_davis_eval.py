# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from dmformer.evaluation.functional import (evaluate_davis_sequences,
                                            evaluate_ref_davis,
                                            merge_object_masks,
                                            save_palette_png,
                                            write_ref_davis_annotator)

REF_FILE = osp.join(
    osp.dirname(__file__), '..', '..', 'data', 'davis_toolkit_reference.json')
# the project's shared/ folder lies beside the repository (also in CI)
MASK_ROOT = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))),
    '..', 'shared', 'data', 'davis-masks')


def test_merge_object_masks_hand_checked():
    # 2 objects, 1 frame, 1 x 4 pixels
    probs = np.array([[[[0.9, 0.4, 0.6, 0.7]]],
                      [[[0.8, 0.45, 0.7, 0.7]]]])
    labels = merge_object_masks(probs, [1, 2])
    # px0: obj1 wins; px1: both < 0.5 -> background; px2: obj2 higher;
    # px3: tie -> first object
    np.testing.assert_array_equal(labels, [[[1, 0, 2, 1]]])
    assert labels.dtype == np.uint8
    # palette ids are taken from obj_ids
    np.testing.assert_array_equal(
        merge_object_masks(probs, [3, 7]), [[[3, 0, 7, 3]]])
    # a threshold below the background score keeps the background
    np.testing.assert_array_equal(
        merge_object_masks(probs * 0 + 0.05, [1, 2], mask_thr=0.), 0)
    with pytest.raises(ValueError, match='obj_ids'):
        merge_object_masks(probs, [1])
    with pytest.raises(ValueError, match='distinct'):
        merge_object_masks(probs, [1, 1])
    with pytest.raises(ValueError, match=r'\(K, T, H, W\)'):
        merge_object_masks(probs[0], [1])


def _make_gt(root, video, labels):
    for t, frame in enumerate(labels):
        save_palette_png(frame, osp.join(root, video, f'{t:05d}.png'))


def test_write_and_evaluate_synthetic(tmp_path):
    gt_root = str(tmp_path / 'gt')
    pred_root = str(tmp_path / 'pred')
    gt = np.zeros((4, 20, 30), dtype=np.uint8)
    gt[:, 2:8, 2:10] = 1
    gt[:, 10:18, 12:28] = 2
    gt[0, 0, 0] = 255  # void label of the GT is background
    _make_gt(gt_root, 'vid', gt)
    gt_clean = gt.copy()
    gt_clean[gt_clean == 255] = 0
    # annotator 0 perfect; annotator 1 misses object 2 in the last 2 frames
    write_ref_davis_annotator(pred_root, 0, 'vid', gt_clean)
    pred = gt_clean.copy()
    pred[2:][pred[2:] == 2] = 0
    paths = write_ref_davis_annotator(pred_root, 1, 'vid', pred)
    assert [osp.basename(p) for p in paths] == [
        '00000.png', '00001.png', '00002.png', '00003.png'
    ]
    assert Image.open(paths[0]).mode == 'P'

    res = evaluate_ref_davis(gt_root, pred_root, num_annotators=2)
    assert res['anno_0']['J&F-Mean'] == pytest.approx(1.)
    r1 = res['anno_1']
    # object 1 perfect; object 2: J = F = [1, 1, 0, 0]
    assert r1['per_object']['vid_2']['J'] == pytest.approx((0.5, 0.5, 1.))
    assert r1['J-Mean'] == pytest.approx(0.75)
    assert r1['F-Mean'] == pytest.approx(0.75)
    assert r1['J-Decay'] == pytest.approx(0.5)
    assert r1['J-Recall'] == pytest.approx(0.75)
    assert res['mean']['J&F-Mean'] == pytest.approx((1 + 0.75) / 2)

    # missing annotator folder / frame -> FileNotFoundError naming the file
    with pytest.raises(FileNotFoundError, match='anno_2'):
        evaluate_ref_davis(gt_root, pred_root, num_annotators=3)
    os.remove(paths[3])
    with pytest.raises(FileNotFoundError, match='00003.png'):
        evaluate_davis_sequences(gt_root, osp.join(pred_root, 'anno_1'))
    # result frame of another size -> ValueError naming the file
    save_palette_png(np.zeros((10, 10), np.uint8), paths[3])
    with pytest.raises(ValueError, match='00003.png'):
        evaluate_davis_sequences(gt_root, osp.join(pred_root, 'anno_1'))
    with pytest.raises(ValueError, match='frame names'):
        write_ref_davis_annotator(pred_root, 0, 'vid', pred, ['a'])


@pytest.mark.skipif(
    not osp.isdir(MASK_ROOT), reason='shared DAVIS masks not available')
def test_real_masks_match_toolkit(tmp_path):
    """With the toolkit's Hungarian assignment applied to the ids, the
    identity-matched evaluation gives the toolkit's per-object values."""
    with open(REF_FILE) as f:
        ref = json.load(f)
    videos = ['blackswan', 'judo']
    for video in videos:
        info = ref['videos'][video]
        mapping = {o['matched_pred_id']: o['obj_id'] for o in info['objects']}
        for name in info['frames']:
            res = np.array(
                Image.open(osp.join(MASK_ROOT, 'rvos', video, f'{name}.png')))
            out = np.zeros_like(res)
            for pred_id, obj_id in mapping.items():
                out[res == pred_id] = obj_id
            save_palette_png(out, str(tmp_path / video / f'{name}.png'))
    res = evaluate_davis_sequences(
        osp.join(MASK_ROOT, 'osvos'), str(tmp_path), videos)
    j_means, f_means = [], []
    for video in videos:
        for o in ref['videos'][video]['objects']:
            got = res['per_object'][f"{video}_{o['obj_id']}"]
            np.testing.assert_allclose(got['J'], o['J_stats'], atol=1e-6)
            np.testing.assert_allclose(got['F'], o['F_stats'], atol=1e-6)
            j_means.append(o['J_stats'][0])
            f_means.append(o['F_stats'][0])
    assert len(res['per_object']) == 3
    assert res['J-Mean'] == pytest.approx(np.mean(j_means), abs=1e-6)
    assert res['J&F-Mean'] == pytest.approx(
        (np.mean(j_means) + np.mean(f_means)) / 2, abs=1e-6)
