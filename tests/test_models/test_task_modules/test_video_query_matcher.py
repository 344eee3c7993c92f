# Copyright (c) OpenMMLab. All rights reserved.
import math

import pytest
import torch

from dmformer.registry import TASK_UTILS

LN2 = math.log(2.)


def _build(**kwargs):
    import dmformer.models.task_modules  # noqa: F401
    return TASK_UTILS.build(dict(type='VideoQueryMatcher', **kwargs))


def test_matcher_picks_planted_query():
    torch.manual_seed(0)
    matcher = _build()
    b, t, q, h, w = 2, 3, 4, 6, 8
    gt_masks = torch.zeros(b, t, h, w)
    gt_masks[0, :, 1:4, 2:6] = 1
    gt_masks[1, :2, 2:5, 0:3] = 1
    gt_valid = torch.tensor([[True, True, True], [True, True, False]])
    gt_bboxes = torch.tensor([0.5, 0.4, 0.3, 0.2]).repeat(b, t, 1)
    gt_bboxes[1, 2] = 0  # absent frame
    cls_scores = torch.randn(b, t, q, 1)
    bbox_preds = torch.rand(b, t, q, 4) * 0.5 + 0.25
    mask_preds = torch.randn(b, t, q, h, w)
    planted = torch.tensor([2, 1])
    for i, j in enumerate(planted.tolist()):
        cls_scores[i, :, j] = 6.
        bbox_preds[i, :, j] = gt_bboxes[i]
        mask_preds[i, :, j] = gt_masks[i] * 20. - 10.
    matched = matcher(cls_scores, bbox_preds, mask_preds, gt_bboxes,
                      gt_masks, gt_valid)
    assert matched.dtype == torch.long
    assert torch.equal(matched, planted)


def test_class_cost_averages_valid_frames_only():
    matcher = _build()
    # one video, two frames, one query; frame 1 is invalid with logit 5
    cls_scores = torch.tensor([0., 5.]).view(1, 2, 1, 1)
    valid = torch.tensor([[True, False]])
    cost = matcher.class_cost(cls_scores, torch.zeros(1, dtype=torch.long),
                              valid)
    # p = 0.5: 0.25 * 0.25 * ln2 - 0.75 * 0.25 * ln2 = -0.125 ln2
    torch.testing.assert_close(cost, torch.tensor([[-0.125 * LN2]]))
    # a video without valid frames has zero class cost (no crash)
    cost = matcher.class_cost(cls_scores, torch.zeros(1, dtype=torch.long),
                              torch.zeros(1, 2, dtype=torch.bool))
    torch.testing.assert_close(cost, torch.zeros(1, 1))


def test_total_cost_hand_computed():
    matcher = _build()
    b, t, q, h, w = 1, 2, 1, 2, 2
    cls_scores = torch.zeros(b, t, q, 1)
    bbox_preds = torch.tensor([0.5, 0.5, 0.2, 0.2]).repeat(b, t, q, 1)
    gt_bboxes = torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0., 0., 0., 0.]]])
    gt_valid = torch.tensor([[True, False]])
    mask_preds = torch.zeros(b, t, q, h, w)
    gt_masks = torch.zeros(b, t, h, w)
    gt_masks[0, 0, 0, :] = 1  # 2 of the 8 clip pixels
    cost = matcher.get_cost(cls_scores, bbox_preds, mask_preds, gt_bboxes,
                            gt_masks, gt_valid)
    cost_class = -0.125 * LN2
    # frame 0: |0.2 - 0.4| * 2 = 0.4; frame 1 vs the zero box: 1.4
    cost_l1 = (0.4 + 1.4) / 2
    # frame 0: IoU = 0.04 / 0.16 = GIoU; frame 1: 0 - (0.36 - 0.04) / 0.36
    cost_giou = -(0.25 + (-(0.36 - 0.04) / 0.36)) / 2
    # p = 0.5: positive pixel 0.25 * 0.25 ln2, negative 0.75 * 0.25 ln2
    cost_mask = (2 * 0.0625 * LN2 + 6 * 0.1875 * LN2) / 8
    # dice: (2 * 0.5 * 2 + 1) / (0.5 * 8 + 2 + 1) = 3 / 7
    cost_dice = -3. / 7.
    expected = 2 * cost_class + 5 * cost_l1 + 2 * cost_giou + \
        2 * cost_mask + 5 * cost_dice
    torch.testing.assert_close(cost, torch.tensor([[expected]]), rtol=1e-5,
                               atol=1e-5)


def test_matcher_shape_errors():
    matcher = _build()
    with pytest.raises(ValueError, match='gt_masks'):
        matcher(
            torch.zeros(1, 2, 3, 1), torch.rand(1, 2, 3, 4),
            torch.zeros(1, 2, 3, 4, 4), torch.rand(1, 2, 4),
            torch.zeros(1, 2, 8, 8), torch.ones(1, 2, dtype=torch.bool))
    assert 'cost_dice=5.0' in repr(matcher)
