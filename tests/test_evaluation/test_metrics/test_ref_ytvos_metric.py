# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from dmformer.evaluation.metrics import (RefYTVOSSubmissionMetric,
                                         zip_folder_atomic)
from dmformer.registry import METRICS


def _sample(video, exp, frames, with_gt=False, h=6, w=8):
    t = len(frames)
    pred = torch.zeros(t, h, w, dtype=torch.bool)
    pred[:, 1:4, 2:6] = True
    sample = dict(
        video_id=video,
        exp_id=exp,
        frame_ids=list(frames),
        ori_shape=(h, w),
        pred_instances=dict(masks=pred))
    if with_gt:
        gt = pred.clone()
        gt[-1] = False  # last frame: prediction but no object -> 0
        sample['gt_instances'] = dict(masks=gt)
    return sample


def test_writes_pngs_and_zip(tmp_path):
    out = str(tmp_path / 'sub')
    metric = METRICS.build(
        dict(type='RefYTVOSSubmissionMetric', outfile_prefix=out))
    metric.process({}, [
        _sample('vidA', '0', ['00000', '00005', '00010']),
        _sample('vidA', '1', ['00000', '00005', '00010']),
        _sample('vidB', '0', ['00003'])
    ])
    res = metric.evaluate(3)
    assert res == {'ref_ytvos/num_expressions': 3}
    png = osp.join(out, 'Annotations', 'vidA', '1', '00005.png')
    img = Image.open(png)
    assert img.mode == 'L'
    arr = np.array(img)
    assert set(np.unique(arr)) == {0, 255}
    assert arr[1:4, 2:6].min() == 255 and arr.sum() == 12 * 255
    with zipfile.ZipFile(osp.join(out, 'submission.zip')) as zf:
        names = sorted(zf.namelist())
    assert names == sorted([
        'Annotations/vidA/0/00000.png', 'Annotations/vidA/0/00005.png',
        'Annotations/vidA/0/00010.png', 'Annotations/vidA/1/00000.png',
        'Annotations/vidA/1/00005.png', 'Annotations/vidA/1/00010.png',
        'Annotations/vidB/0/00003.png'
    ])
    # no temporary file is left next to the zip
    assert sorted(os.listdir(out)) == ['Annotations', 'submission.zip']


def test_scores_when_gt_present(tmp_path):
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(tmp_path), zip_name=None)
    metric.process({}, [_sample('v', '0', ['0', '1'], with_gt=True)])
    res = metric.evaluate(1)
    # frame 0 perfect, frame 1 GT empty -> J = F = 0
    assert res['ref_ytvos/J'] == pytest.approx(50.)
    assert res['ref_ytvos/F'] == pytest.approx(50.)
    assert res['ref_ytvos/J&F'] == pytest.approx(50.)
    assert not osp.exists(osp.join(str(tmp_path), 'submission.zip'))


def test_per_expression_file(tmp_path):
    path = str(tmp_path / 'scores' / 'per_expression.json')
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(tmp_path / 'sub'),
        zip_name=None,
        per_expression_file=path)
    metric.process({}, [
        _sample('v', '0', ['0', '1'], with_gt=True),
        _sample('v', '1', ['0'], with_gt=True)
    ])
    metric.evaluate(2)
    table = json.load(open(path))
    assert sorted(table['v']) == ['0', '1']
    assert table['v']['0']['J'] == pytest.approx(0.5)
    assert table['v']['1']['JF'] == 0.0  # its one frame: GT empty


def test_meta_file_completeness(tmp_path):
    meta = tmp_path / 'meta_expressions.json'
    meta.write_text(
        json.dumps(
            dict(videos=dict(
                v=dict(frames=['00000', '00005'],
                       expressions={'0': dict(exp='a cat')})))))
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(tmp_path / 'out'), meta_file=str(meta))
    metric.process({}, [_sample('v', '0', ['00000'])])
    with pytest.raises(FileNotFoundError, match=r'00005\.png'):
        metric.evaluate(1)
    assert not osp.exists(str(tmp_path / 'out' / 'submission.zip'))
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(tmp_path / 'out'), meta_file=str(meta))
    metric.process({}, [_sample('v', '0', ['00000', '00005'])])
    metric.evaluate(1)
    assert osp.isfile(str(tmp_path / 'out' / 'submission.zip'))


def test_stale_pngs_of_an_earlier_run_are_not_zipped(tmp_path):
    out = tmp_path / 'sub'
    stale = out / 'Annotations' / 'old_video' / '0'
    stale.mkdir(parents=True)
    (stale / '00000.png').write_bytes(b'old')
    (out / 'Annotations' / 'v' / '0').mkdir(parents=True)
    (out / 'Annotations' / 'v' / '0' / '00009.png').write_bytes(b'old')
    metric = RefYTVOSSubmissionMetric(outfile_prefix=str(out))
    metric.process({}, [_sample('v', '0', ['00000'])])
    metric.evaluate(1)
    with zipfile.ZipFile(str(out / 'submission.zip')) as zf:
        assert zf.namelist() == ['Annotations/v/0/00000.png']
    assert not (out / 'Annotations' / 'old_video').exists()


def test_zip_is_atomic(tmp_path, monkeypatch):
    src = tmp_path / 'Annotations'
    for i in range(5):
        (src / 'v' / '0').mkdir(parents=True, exist_ok=True)
        (src / 'v' / '0' / f'{i:05d}.png').write_bytes(b'x' * 100)
    zip_path = str(tmp_path / 'submission.zip')

    real_write = zipfile.ZipFile.write
    calls = []

    def failing_write(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError('disk full')
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, 'write', failing_write)
    with pytest.raises(OSError, match='disk full'):
        zip_folder_atomic(str(src), zip_path, 'Annotations')
    assert len(calls) == 3  # it failed mid-way
    assert sorted(os.listdir(tmp_path)) == ['Annotations']

    # an existing archive survives a failed rewrite untouched
    monkeypatch.setattr(zipfile.ZipFile, 'write', real_write)
    zip_folder_atomic(str(src), zip_path, 'Annotations')
    before = open(zip_path, 'rb').read()
    calls.clear()
    monkeypatch.setattr(zipfile.ZipFile, 'write', failing_write)
    with pytest.raises(OSError):
        zip_folder_atomic(str(src), zip_path, 'Annotations')
    assert open(zip_path, 'rb').read() == before
    assert sorted(os.listdir(tmp_path)) == ['Annotations', 'submission.zip']
    with zipfile.ZipFile(zip_path) as zf:
        assert len(zf.namelist()) == 5

    with pytest.raises(FileNotFoundError, match='nowhere'):
        zip_folder_atomic(str(tmp_path / 'nowhere'), zip_path, 'A')


def test_bad_input(tmp_path):
    metric = RefYTVOSSubmissionMetric(outfile_prefix=str(tmp_path))
    sample = _sample('v', '7', ['0', '1'])
    sample['ori_shape'] = (10, 10)
    with pytest.raises(ValueError, match='video v exp 7.*ori_shape'):
        metric.process({}, [sample])
    with pytest.raises(ValueError, match='video v exp 7.*frame_ids'):
        metric.process({}, [_sample('v', '7', ['0', '1'])
                            | dict(frame_ids=['0'])])
