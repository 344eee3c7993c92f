# Copyright (c) OpenMMLab. All rights reserved.
import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps

from dmformer.models.losses import SmoothedGIoULoss, smoothed_giou
from dmformer.models.task_modules import VideoQueryMatcher


def test_smoothed_giou_hand_computed():
    pred = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 2.]],
                        dtype=torch.float64)
    target = torch.tensor([[1., 1., 3., 3.], [0., 0., 0., 0.]],
                          dtype=torch.float64)
    eps = 1e-6
    # pair 1: inter 1, union 7, enclosing 3 x 3 = 9
    # pair 2: a zero target box: inter 0, union 2, enclosing 3 x 2 = 6
    expected = torch.tensor([
        (1 + eps) / (7 + eps) - (9 - 7 + eps) / (9 + eps),
        (0 + eps) / (2 + eps) - (6 - 2 + eps) / (6 + eps)
    ], dtype=torch.float64)
    got = smoothed_giou(pred, target, eps)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    # mmdet's GIoU: the same up to eps, but IoU exactly 0 on the zero box
    mmdet = bbox_overlaps(pred, target, mode='giou', is_aligned=True)
    torch.testing.assert_close(
        mmdet, torch.tensor([1 / 7 - 2 / 9, 0 - 4 / 6],
                            dtype=torch.float64),
        rtol=0,
        atol=1e-15)
    assert (got - mmdet)[1].item() > 4e-7  # eps / 2 from the IoU


def test_smoothed_giou_loss_reduction():
    pred = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 2.]])
    target = torch.tensor([[1., 1., 3., 3.], [0., 0., 0., 0.]])
    loss = SmoothedGIoULoss(loss_weight=2.)
    per_box = 1 - smoothed_giou(pred, target)
    torch.testing.assert_close(
        loss(pred, target, avg_factor=4), 2 * per_box.sum() / 4)
    torch.testing.assert_close(
        loss(pred, target, reduction_override='none'), 2 * per_box)


def test_matcher_giou_cost_switch():
    gen = torch.Generator().manual_seed(0)
    preds = torch.rand(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    preds[..., 2:] = preds[..., 2:] * 0.5 + 0.05  # positive sizes
    gts = torch.rand(2, 3, 4, generator=gen, dtype=torch.float64)
    gts[..., 2:] = gts[..., 2:] * 0.5 + 0.05
    gts[0, 1] = 0  # the object is absent in one frame
    l1, cost = VideoQueryMatcher().bbox_costs(preds, gts)
    l1_s, cost_s = VideoQueryMatcher(giou_smooth_eps=1e-6).bbox_costs(
        preds, gts)
    torch.testing.assert_close(l1_s, l1)
    expected = -smoothed_giou(
        bbox_cxcywh_to_xyxy(preds).reshape(-1, 4),
        bbox_cxcywh_to_xyxy(gts.unsqueeze(2).expand_as(preds)).reshape(
            -1, 4)).view(2, 3, 4).mean(1)
    torch.testing.assert_close(cost_s, expected, rtol=0, atol=1e-15)
    assert 0 < (cost_s - cost).abs().max() < 1e-4
