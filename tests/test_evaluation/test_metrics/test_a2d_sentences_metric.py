# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch

from dmformer.evaluation.metrics import A2DSentencesMetric
from dmformer.registry import METRICS


def _clip(video, pred_box, gt_box, annotated=1, t=3, score=0.9,
          use_valid=False):
    pred = torch.zeros(t, 10, 10, dtype=torch.bool)
    gt = torch.zeros(t, 10, 10, dtype=torch.bool)
    pred[:] = True  # other frames are not scored
    pred[annotated] = False
    y0, x0, y1, x1 = pred_box
    pred[annotated, y0:y1, x0:x1] = True
    y0, x0, y1, x1 = gt_box
    gt[annotated, y0:y1, x0:x1] = True
    sample = dict(
        video_id=video,
        exp_id='0',
        pred_instances=dict(masks=pred, scores=torch.full((t, ), score)),
        gt_instances=dict(masks=gt))
    if use_valid:
        valid = torch.zeros(t, dtype=torch.bool)
        valid[annotated] = True
        sample['gt_instances']['valid'] = valid
    else:
        sample['valid_indices'] = [annotated]
    return sample


def test_hand_checked_metrics():
    metric = METRICS.build(dict(type='A2DSentencesMetric'))
    samples = [
        # IoU 1 (16 / 16)
        _clip('a', (0, 0, 4, 4), (0, 0, 4, 4), score=0.9),
        # IoU (8 + 1e-6) / (16 + 1e-6) is just above 0.5: ReferFormer's eps
        # makes it count at P@0.5 despite the strict >
        _clip('b', (0, 0, 4, 2), (0, 0, 4, 4), score=0.8, use_valid=True),
        # IoU 0 (disjoint, 4 + 4 px)
        _clip('c', (0, 0, 2, 2), (5, 5, 7, 7), annotated=0, score=0.7),
    ]
    metric.process({}, samples)
    res = metric.evaluate(3)
    assert res['a2d/overall_iou'] == pytest.approx((16 + 8) / (16 + 16 + 8)
                                                   * 100)
    assert res['a2d/mean_iou'] == pytest.approx((1 + 0.5 + 0) / 3 * 100,
                                                abs=1e-4)
    assert res['a2d/P@0.5'] == pytest.approx(200 / 3)
    assert res['a2d/P@0.6'] == pytest.approx(100 / 3)
    assert res['a2d/P@0.9'] == pytest.approx(100 / 3)
    # COCO AP with one detection per frame, sorted by score:
    # IoU thr 0.5: TP (1.0), TP (0.5 >= 0.5), FP -> AP = 67 / 101 points
    # IoU thr >= 0.55: TP, FP, FP -> recall 1/3 -> 34 / 101 points
    ap50 = 67 / 101
    ap_hi = 34 / 101
    assert res['a2d/AP50'] == pytest.approx(ap50 * 100, abs=1e-4)
    assert res['a2d/AP75'] == pytest.approx(ap_hi * 100, abs=1e-4)
    assert res['a2d/mAP'] == pytest.approx(
        (ap50 + 9 * ap_hi) / 10 * 100, abs=1e-4)


def test_without_map_and_errors():
    metric = A2DSentencesMetric(with_map=False, iou_thrs=(0.25, 0.75))
    metric.process({}, [_clip('a', (0, 0, 4, 2), (0, 0, 4, 4))])
    res = metric.evaluate(1)
    assert set(res) == {
        'a2d/P@0.25', 'a2d/P@0.75', 'a2d/overall_iou', 'a2d/mean_iou'
    }
    assert res['a2d/P@0.25'] == 100. and res['a2d/P@0.75'] == 0.

    sample = _clip('bad', (0, 0, 1, 1), (0, 0, 1, 1))
    del sample['valid_indices']
    with pytest.raises(ValueError, match='video bad exp 0.*annotated'):
        metric.process({}, [sample])
    sample['valid_indices'] = [5]
    with pytest.raises(ValueError, match='video bad exp 0.*out of range'):
        metric.process({}, [sample])
    sample['gt_instances']['masks'] = sample['gt_instances']['masks'][:, :5]
    with pytest.raises(ValueError, match='video bad exp 0.*do not match'):
        metric.process({}, [sample])
