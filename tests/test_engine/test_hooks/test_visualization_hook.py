# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from dmformer.engine.hooks import RVOSVisualizationHook
from dmformer.structures import RVOSDataSample
from dmformer.visualization import RVOSLocalVisualizer


def _sample(tmp_path, video, exp):
    paths = []
    for k in range(3):
        path = str(tmp_path / 'frames' / video / f'{k:05d}.jpg')
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, np.full((24, 32, 3), 120, np.uint8))
        paths.append(path)
    sample = RVOSDataSample(
        metainfo=dict(
            video_id=video,
            exp_id=exp,
            text='the box',
            img_paths=paths,
            frame_ids=[f'{k:05d}' for k in range(3)]))
    sample.pred_instances = InstanceData(
        masks=torch.ones(3, 24, 32, dtype=torch.bool),
        scores=torch.ones(3))
    return sample


def test_test_pictures_written_per_expression(tmp_path):
    runner = SimpleNamespace(
        visualizer=RVOSLocalVisualizer(name='test_vis_hook'),
        log_dir=str(tmp_path / 'run'),
        iter=0)
    hook = RVOSVisualizationHook(draw=True, test_out_dir='vis', interval=2)
    hook.before_test(runner)
    batch = [_sample(tmp_path, 'vidA', '0'), _sample(tmp_path, 'vidA', '1'),
             _sample(tmp_path, 'vidB', '0')]
    hook.after_test_iter(runner, 0, {}, batch[:2])
    hook.after_test_iter(runner, 1, {}, batch[2:])
    written = {
        p
        for p in ('vidA/0.jpg', 'vidA/1.jpg', 'vidB/0.jpg')
        if osp.isfile(osp.join(runner.log_dir, 'vis', p))
    }
    assert written == {'vidA/0.jpg', 'vidB/0.jpg'}  # every 2nd sample

    off = RVOSVisualizationHook()
    off.after_test_iter(runner, 0, {}, [_sample(tmp_path, 'vidC', '0')])
    assert not osp.exists(osp.join(runner.log_dir, 'vis', 'vidC'))
    with pytest.raises(ValueError, match='interval'):
        RVOSVisualizationHook(interval=0)
