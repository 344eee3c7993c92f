# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from dmformer.registry import VISUALIZERS
from dmformer.structures import RVOSDataSample
from dmformer.visualization import (RVOSLocalVisualizer, evenly_spaced,
                                    legend_entry)

H, W, T = 40, 60, 7


def _sample(with_gt=True):
    sample = RVOSDataSample(
        metainfo=dict(
            text='the red box',
            frame_ids=[f'{k:05d}' for k in range(T)],
            pred_subject='the red box'))
    masks = torch.zeros(T, H, W, dtype=torch.bool)
    masks[:, 10:20, 10:30] = True
    sample.pred_instances = InstanceData(
        masks=masks, scores=torch.full((T, ), 0.75))
    if with_gt:
        sample.gt_instances = InstanceData(masks=masks.roll(5, dims=2))
    return sample


def test_evenly_spaced_and_legend():
    assert evenly_spaced(7, 5) == [0, 2, 3, 4, 6]
    assert evenly_spaced(3, 5) == [0, 1, 2]
    assert evenly_spaced(9, 1) == [0] and evenly_spaced(0, 3) == []
    assert legend_entry('a dog', 'a dog', 0.5) == \
        '"a dog" | subject: "a dog" | score 0.50'
    assert legend_entry('a dog') == '"a dog"'


def test_add_datasample_draws_gt_above_prediction(tmp_path):
    vis = VISUALIZERS.build(
        dict(type='RVOSLocalVisualizer', name='test_rvos_vis', num_frames=3))
    assert isinstance(vis, RVOSLocalVisualizer)
    frames = [np.full((H, W, 3), 90, np.uint8) for _ in range(T)]
    out = str(tmp_path / 'v' / '0.jpg')
    drawn = vis.add_datasample('v/0', frames, _sample(), out_file=out)
    assert (tmp_path / 'v' / '0.jpg').is_file()
    # 3 frames side by side (upscaled), two rows with their titles
    k = 4  # 160 / 40
    assert drawn.shape[1] == 3 * W * k + 2 * 6
    assert drawn.shape[0] > 2 * H * k
    # the prediction row alone when the split has no ground truth
    only_pred = vis.add_datasample('v/0', frames, _sample(with_gt=False))
    assert only_pred.shape[0] < drawn.shape[0]
    with pytest.raises(ValueError, match='7 frames but 6 frame_ids'):
        bad = _sample()
        bad.set_metainfo(dict(frame_ids=bad.frame_ids[:6]))
        vis.add_datasample('v/0', frames, bad)


def test_draw_frame_is_rgb_and_readable():
    vis = RVOSLocalVisualizer(name='test_rvos_vis_frame')
    frame = np.zeros((H, W, 3), np.uint8)
    mask = np.zeros((H, W), bool)
    mask[5:15, 5:15] = True
    drawn = vis.draw_frame(frame, [mask], ['"x"'])
    # upscaled to a short side of 360 (factor 9), legend below
    assert drawn.shape[1] == W * 9 and drawn.shape[0] > H * 9
    # sentence 0 is drawn in red: R channel dominates inside the mask
    inside = drawn[9 * 10, 9 * 10]
    assert inside[0] > inside[2]
