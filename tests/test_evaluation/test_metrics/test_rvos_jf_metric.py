# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from dmformer.evaluation.metrics import RVOSJFMetric
from dmformer.registry import METRICS
from dmformer.structures.rvos_data_sample import RVOSDataSample


def _square(t, h=20, w=20, box=(4, 4, 12, 12)):
    m = torch.zeros(t, h, w, dtype=torch.bool)
    y0, x0, y1, x1 = box
    m[:, y0:y1, x0:x1] = True
    return m


def _dict_sample(video, exp, pred, gt, frame_ids=None):
    t = pred.shape[0]
    return dict(
        video_id=video,
        exp_id=exp,
        frame_ids=frame_ids or [f'{i:05d}' for i in range(t)],
        ori_shape=tuple(gt.shape[1:]),
        pred_instances=dict(masks=pred, scores=torch.ones(t)),
        gt_instances=dict(masks=gt))


def test_registry_and_prefix():
    metric = METRICS.build(dict(type='RVOSJFMetric'))
    assert isinstance(metric, RVOSJFMetric)
    assert metric.prefix == 'rvos'
    assert METRICS.build(dict(type='RVOSJFMetric', prefix='mevis')).prefix \
        == 'mevis'


def test_end_to_end_hand_checked():
    metric = RVOSJFMetric()
    gt = _square(2)
    # exp '0': perfect -> J = F = 1
    perfect = _dict_sample('v1', '0', gt.clone(), gt)
    # exp '1': frame 0 empty prediction (J=F=0), frame 1 half the square
    pred = gt.clone()
    pred[0] = False
    pred[1, :, 8:] = False
    half = _dict_sample('v1', '1', pred, gt)
    # video v2, given as a real RVOSDataSample: both empty -> J = F = 1
    empty = torch.zeros(3, 10, 10, dtype=torch.bool)
    ds = RVOSDataSample(
        metainfo=dict(video_id='v2', exp_id='0',
                      frame_ids=['a', 'b', 'c'], ori_shape=(10, 10)))
    ds.pred_instances = InstanceData(masks=empty.clone())
    ds.gt_instances = InstanceData(masks=empty.clone())
    metric.process({}, [perfect, half])
    metric.process({}, [ds])
    res = metric.evaluate(size=3)

    # half square: J = 32 / 64; boundary F computed from the DAVIS maths
    from dmformer.evaluation.functional import db_eval_boundary
    f_half = db_eval_boundary(gt[1].numpy(), pred[1].numpy())
    j_exp1 = (0 + 0.5) / 2
    f_exp1 = (0 + f_half) / 2
    j = (1 + j_exp1 + 1) / 3 * 100
    f = (1 + f_exp1 + 1) / 3 * 100
    assert res['rvos/J'] == pytest.approx(j)
    assert res['rvos/F'] == pytest.approx(f)
    assert res['rvos/J&F'] == pytest.approx((j + f) / 2)
    assert res['rvos/num_expressions'] == 3
    assert metric.results == []


def test_clips_of_one_expression_are_merged():
    gt = _square(4)
    pred = gt.clone()
    pred[3] = False
    whole = RVOSJFMetric()
    whole.process({}, [_dict_sample('v', '0', pred, gt)])
    split = RVOSJFMetric()
    ids = ['00000', '00001', '00002', '00003']
    split.process({}, [_dict_sample('v', '0', pred[2:], gt[2:], ids[2:])])
    split.process({}, [_dict_sample('v', '0', pred[:2], gt[:2], ids[:2])])
    a, b = whole.evaluate(1), split.evaluate(2)
    assert a == pytest.approx(b)
    assert a['rvos/J'] == pytest.approx(75.)
    # the same frame twice is an error
    dup = RVOSJFMetric()
    dup.process({}, [_dict_sample('v', '0', pred[:2], gt[:2], ids[:2])] * 2)
    with pytest.raises(ValueError, match='frame 00000 of video v'):
        dup.evaluate(2)


def test_bad_input():
    metric = RVOSJFMetric()
    gt = _square(2)
    with pytest.raises(ValueError, match='video vid exp 3.*do not match'):
        metric.process({}, [_dict_sample('vid', '3', gt[:, :10], gt)])
    with pytest.raises(ValueError, match='video vid exp 3.*frame_ids'):
        metric.process({}, [_dict_sample('vid', '3', gt, gt, ['00000'])])
    with pytest.raises(ValueError, match='video vid exp 3.*do not match'):
        metric.process({}, [_dict_sample('vid', '3', gt[:1], gt, ['0'])])
    sample = _dict_sample('vid', '3', gt, gt)
    del sample['gt_instances']
    with pytest.raises(ValueError, match='no gt_instances'):
        metric.process({}, [sample])
    with pytest.raises(ValueError, match='no sample'):
        metric.compute_metrics([])
    np.testing.assert_equal(metric.results, [])


def test_per_expression_file(tmp_path):
    import json
    path = str(tmp_path / 'sub' / 'per_exp.json')
    metric = RVOSJFMetric(per_expression_file=path, log_per_video=False)
    gt = _square(2)
    pred = gt.clone()
    pred[0] = False
    metric.process({}, [
        _dict_sample('v1', '0', gt.clone(), gt),
        _dict_sample('v1', '1', pred, gt)
    ])
    metric.evaluate(size=2)
    table = json.load(open(path))
    assert table['v1']['0'] == {'J': 1.0, 'F': 1.0, 'JF': 1.0}
    assert table['v1']['1']['J'] == pytest.approx(0.5)


def test_swap_pair_scores(tmp_path):
    import json
    pairs_file = tmp_path / 'swap_pairs.json'
    pairs_file.write_text(
        json.dumps({'pairs': [[['v1', '0'], ['v1', '1']],
                              [['v2', '0'], ['v2', '1']]]}))
    metric = RVOSJFMetric(
        swap_pairs_file=str(pairs_file), log_per_video=False)
    gt = _square(2)
    half = gt.clone()
    half[0] = False  # J = 0.5: not enough to solve a pair
    wrong = _square(2, box=(14, 14, 18, 18))  # J = 0
    metric.process({}, [
        _dict_sample('v1', '0', gt.clone(), gt),
        _dict_sample('v1', '1', gt.clone(), gt),
        _dict_sample('v2', '0', gt.clone(), gt),
        _dict_sample('v2', '1', half, gt),
        _dict_sample('v3', '0', wrong, gt),  # not in a pair
    ])
    res = metric.evaluate(size=5)
    assert res['rvos/swap_pairs_solved'] == 1
    assert res['rvos/num_swap_pairs'] == 2
    # J&F of the 4 paired expressions: 1, 1, 1 and (0.5 + F) / 2
    assert 75 < res['rvos/swap_J&F'] < 100
    assert res['rvos/num_expressions'] == 5

    # a pair whose expression was not evaluated is named
    metric = RVOSJFMetric(
        swap_pairs_file=str(pairs_file), log_per_video=False)
    metric.process({}, [_dict_sample('v1', '0', gt.clone(), gt)])
    with pytest.raises(ValueError, match=r"\('v1', '1'\)"):
        metric.evaluate(size=1)
    # a missing file fails when the metric is built, not after training
    with pytest.raises(FileNotFoundError,
                       match='swap_pairs_file not found: .*missing.json'):
        RVOSJFMetric(swap_pairs_file=str(tmp_path / 'missing.json'))


def test_subject_accuracy(tmp_path):
    import json
    labels = tmp_path / 'subject_labels.json'
    labels.write_text(json.dumps({'v': {'0': [0, 14], '1': [0, 10],
                                        '2': [0, 7]}}))
    metric = RVOSJFMetric(
        subject_label_file=str(labels), log_per_video=False)
    gt = _square(2)
    samples = []
    for exp, text, subject in [
            ('0', 'the red circle next to the square', 'the red circle '),
            ('1', 'the square next to the red circle', 'the red circle'),
            ('2', 'the dog', None),  # no phrase chosen
            ('3', 'the cat', 'the cat')]:  # not labelled
        sample = _dict_sample('v', exp, gt.clone(), gt)
        sample.update(text=text, pred_subject=subject)
        samples.append(sample)
    # a second clip of expression 0 counts once
    samples.append(dict(samples[0], frame_ids=['00002', '00003']))
    metric.process({}, samples)
    res = metric.evaluate(size=len(samples))
    assert res['rvos/num_subject_labels'] == 3
    assert res['rvos/subject_acc'] == pytest.approx(100 / 3)

    with pytest.raises(FileNotFoundError,
                       match='subject_label_file not found: .*none.json'):
        RVOSJFMetric(subject_label_file=str(tmp_path / 'none.json'))
    labels.write_text('[1, 2]')
    metric = RVOSJFMetric(subject_label_file=str(labels))
    metric.process({}, samples[:1])
    with pytest.raises(ValueError, match='not a subject_labels.json'):
        metric.evaluate(size=1)
