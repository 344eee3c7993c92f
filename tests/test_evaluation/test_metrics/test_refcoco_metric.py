# Copyright (c) OpenMMLab. All rights reserved.
import pytest
import torch
from mmengine.structures import InstanceData

from dmformer.evaluation.metrics import RefCOCOMetric
from dmformer.registry import METRICS
from dmformer.structures.rvos_data_sample import RVOSDataSample


def _image(pred_px, gt_px, inter_px):
    """1 x 1 x N masks with given foreground sizes and overlap."""
    n = 20
    pred = torch.zeros(1, 1, n, dtype=torch.bool)
    gt = torch.zeros(1, 1, n, dtype=torch.bool)
    gt[0, 0, :gt_px] = True
    start = gt_px - inter_px
    pred[0, 0, start:start + pred_px] = True
    ds = RVOSDataSample(metainfo=dict(video_id='img', exp_id='0'))
    ds.pred_instances = InstanceData(masks=pred)
    ds.gt_instances = InstanceData(masks=gt)
    return ds


def test_hand_checked():
    metric = METRICS.build(dict(type='RefCOCOMetric'))
    assert isinstance(metric, RefCOCOMetric)
    # IoUs: 4/4 = 1, 3/5 = 0.6, 0/6 = 0
    metric.process({}, [_image(4, 4, 4), _image(4, 4, 3), _image(3, 3, 0)])
    res = metric.evaluate(3)
    assert res['refcoco/cIoU'] == pytest.approx((4 + 3) / (4 + 5 + 6) * 100)
    assert res['refcoco/mIoU'] == pytest.approx((1 + 0.6) / 3 * 100)
    assert res['refcoco/P@0.5'] == pytest.approx(200 / 3)
    # >= threshold as in LAVT
    assert res['refcoco/P@0.6'] == pytest.approx(200 / 3)
    assert res['refcoco/P@0.7'] == pytest.approx(100 / 3)


def test_errors():
    metric = RefCOCOMetric()
    bad = _image(1, 1, 1)
    bad.gt_instances = InstanceData(masks=torch.zeros(1, 2, 2).bool())
    with pytest.raises(ValueError, match='video img exp 0.*do not match'):
        metric.process({}, [bad])
    with pytest.raises(ValueError, match='no sample'):
        metric.compute_metrics([])
