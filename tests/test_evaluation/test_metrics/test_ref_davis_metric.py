# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from dmformer.evaluation.functional import save_palette_png
from dmformer.evaluation.metrics import RefDAVISMetric
from dmformer.registry import METRICS

T, H, W = 3, 16, 24


def _gt_labels():
    gt = np.zeros((T, H, W), dtype=np.uint8)
    gt[:, 2:8, 2:10] = 1
    gt[:, 9:15, 12:22] = 2
    return gt


def _make_gt_root(root):
    for video in ('v1', 'v2'):
        for t, frame in enumerate(_gt_labels()):
            save_palette_png(frame, osp.join(root, video, f'{t:05d}.png'))


def _samples(video, miss_obj2_for_anno=3):
    gt = torch.from_numpy(_gt_labels())
    samples = []
    for obj_index, obj_id in enumerate((1, 2)):
        for anno_id in range(4):
            masks = gt == obj_id
            if obj_id == 2 and anno_id == miss_obj2_for_anno:
                masks = torch.zeros_like(masks)
            samples.append(
                dict(
                    video_id=video,
                    # ReferFormer order: exp_id = obj_index * 4 + anno_id
                    exp_id=str(obj_index * 4 + anno_id),
                    obj_id=obj_id,
                    frame_ids=[f'{t:05d}' for t in range(T)],
                    pred_instances=dict(masks=masks)))
    return samples


def test_end_to_end(tmp_path):
    gt_root = str(tmp_path / 'gt')
    out = str(tmp_path / 'out')
    _make_gt_root(gt_root)
    metric = METRICS.build(
        dict(type='RefDAVISMetric', outfile_prefix=out, gt_root=gt_root))
    assert isinstance(metric, RefDAVISMetric)
    metric.process({}, _samples('v1'))
    metric.process({}, _samples('v2'))
    res = metric.evaluate(16)
    for a in range(3):
        assert res[f'ref_davis/anno_{a}/J&F'] == pytest.approx(100.)
    # annotator 3 misses object 2 everywhere: J = F = 0 on 2 of 4 objects
    assert res['ref_davis/anno_3/J'] == pytest.approx(50.)
    assert res['ref_davis/anno_3/J&F'] == pytest.approx(50.)
    assert res['ref_davis/J&F-Mean'] == pytest.approx((3 * 100 + 50) / 4)
    assert res['ref_davis/J-Recall'] == pytest.approx((3 * 100 + 50) / 4)
    # palette PNGs with the GT ids, cache removed
    img = Image.open(osp.join(out, 'anno_0', 'v2', '00002.png'))
    assert img.mode == 'P'
    np.testing.assert_array_equal(np.array(img), _gt_labels()[2])
    img = np.array(Image.open(osp.join(out, 'anno_3', 'v1', '00000.png')))
    assert set(np.unique(img)) == {0, 1}
    assert not osp.exists(osp.join(out, '.ref_davis_cache'))


def test_probabilities_and_format_only(tmp_path):
    out = str(tmp_path / 'out')
    metric = RefDAVISMetric(outfile_prefix=out, num_annotators=1)
    probs1 = torch.full((1, 2, 2), 0.6)
    probs2 = torch.tensor([[[0.7, 0.4], [0.55, 0.2]]])
    samples = []
    for obj_id, probs in ((1, probs1), (2, probs2)):
        samples.append(
            dict(
                video_id='v',
                exp_id='x',
                anno_id=0,
                obj_id=obj_id,
                pred_instances=dict(masks=probs > 0.5, mask_probs=probs)))
    metric.process({}, samples)
    assert metric.evaluate(2) == {}
    labels = np.array(Image.open(osp.join(out, 'anno_0', 'v', '00000.png')))
    np.testing.assert_array_equal(labels, [[2, 1], [1, 1]])


def test_errors(tmp_path):
    metric = RefDAVISMetric(outfile_prefix=str(tmp_path))
    sample = _samples('v1')[0]
    sample['exp_id'] = 'abc'
    with pytest.raises(ValueError, match='video v1 exp abc.*anno_id'):
        metric.process({}, [sample])
    # an annotator without prediction for a video
    metric = RefDAVISMetric(outfile_prefix=str(tmp_path))
    metric.process({}, _samples('v1')[:3])
    with pytest.raises(ValueError, match='video v1.*annotator 3'):
        metric.evaluate(3)
    # missing GT folder is reported
    metric = RefDAVISMetric(
        outfile_prefix=str(tmp_path / 'o'), gt_root=str(tmp_path / 'nogt'))
    metric.process({}, _samples('v1'))
    with pytest.raises(FileNotFoundError, match='nogt'):
        metric.evaluate(8)
