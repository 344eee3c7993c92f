# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from dmformer.evaluation.metrics.utils import (get_field, get_frame_ids,
                                               get_masks, summarize_jf)
from dmformer.structures.rvos_data_sample import RVOSDataSample


def test_get_field_and_masks():
    ds = RVOSDataSample(metainfo=dict(video_id='v', exp_id='1'))
    ds.pred_instances = InstanceData(masks=torch.ones(2, 3, 4))
    as_dict = ds.to_dict()
    for sample in (ds, as_dict):
        assert get_field(sample, 'video_id') == 'v'
        masks = get_masks(sample, 'pred_instances')
        assert masks.dtype == bool and masks.shape == (2, 3, 4)
        assert get_masks(sample, 'gt_instances') is None
        assert get_frame_ids(sample, 2) == ['00000', '00001']
    assert get_field(as_dict, 'nothing', 3) == 3
    with pytest.raises(KeyError, match='nothing'):
        get_field(as_dict, 'nothing')
    with pytest.raises(TypeError):
        get_field([1], 'x')
    as_dict['pred_instances']['masks'] = torch.ones(3, 4)
    with pytest.raises(ValueError, match='video v exp 1.*\\(T, H, W\\)'):
        get_masks(as_dict, 'pred_instances')


def test_summarize_jf_per_video():
    results = [
        dict(video_id='a', exp_id='0', frame_ids=['0', '1'], J=[1., 0.],
             F=[1., 1.]),
        dict(video_id='a', exp_id='1', frame_ids=['0'], J=[0.5], F=[0.]),
        dict(video_id='b', exp_id='0', frame_ids=['0'], J=[1.], F=[1.]),
    ]
    s = summarize_jf(results)
    assert s['per_exp'][('a', '0')]['J'] == pytest.approx(0.5)
    assert s['per_video']['a']['J'] == pytest.approx(0.5)
    assert s['per_video']['a']['F'] == pytest.approx(0.5)
    assert s['per_video']['a']['num_exps'] == 2
    assert s['J'] == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert s['JF'] == pytest.approx((s['J'] + s['F']) / 2)
    np.testing.assert_allclose(s['F'], (1 + 0 + 1) / 3)
