# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from dmformer.evaluation.metrics import (MeViSSubmissionMetric,
                                         RefYTVOSSubmissionMetric,
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


def _write_meta(path, videos):
    """A meta_expressions.json of {video: (frames, exp_ids)}."""
    path.write_text(
        json.dumps(
            dict(videos={
                v: dict(
                    frames=frames,
                    expressions={e: dict(exp='a cat')
                                 for e in exp_ids})
                for v, (frames, exp_ids) in videos.items()
            })))
    return str(path)


@pytest.fixture
def valid_and_test(tmp_path):
    """Ref-YouTube-VOS-like meta files: the valid file lists the valid
    videos 'a' and 'c' and the test video 'b', the test file 'b'."""
    valid = _write_meta(
        tmp_path / 'valid.json', {
            'a': (['00005', '00010'], ['0', '1']),
            'b': (['00000', '00005'], ['0']),
            'c': (['00020'], ['0'])
        })
    test = _write_meta(tmp_path / 'test.json',
                       {'b': (['00000', '00005'], ['0'])})
    return valid, test


def test_exclude_meta_file(tmp_path, valid_and_test):
    valid, test = valid_and_test
    out = tmp_path / 'out'
    metric = METRICS.build(
        dict(
            type='RefYTVOSSubmissionMetric',
            outfile_prefix=str(out),
            meta_file=valid,
            exclude_meta_file=test))
    assert sorted(metric.expected) == ['a', 'c']
    assert metric.excluded_videos == {'b'}
    metric.process({}, [
        _sample('a', '0', ['00005', '00010']),
        _sample('a', '1', ['00005', '00010']),
        _sample('c', '0', ['00020'])
    ])
    assert metric.evaluate(3) == {'ref_ytvos/num_expressions': 3}
    with zipfile.ZipFile(str(out / 'submission.zip')) as zf:
        names = sorted(zf.namelist())
    assert names == [
        'Annotations/a/0/00005.png', 'Annotations/a/0/00010.png',
        'Annotations/a/1/00005.png', 'Annotations/a/1/00010.png',
        'Annotations/c/0/00020.png'
    ]


def test_exclude_meta_file_completeness(tmp_path, valid_and_test):
    valid, test = valid_and_test
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(tmp_path / 'out'),
        meta_file=valid,
        exclude_meta_file=test)
    metric.process({}, [_sample('a', '0', ['00005', '00010'])])
    with pytest.raises(
            FileNotFoundError,
            match=r'submission incomplete: 3 PNGs of .*valid\.json minus '
            r'.*test\.json missing, e.g. .*a/1/00005\.png'):
        metric.evaluate(1)
    assert not osp.exists(str(tmp_path / 'out' / 'submission.zip'))


def test_samples_outside_the_submission_are_refused(tmp_path,
                                                    valid_and_test):
    valid, test = valid_and_test
    out = tmp_path / 'out'
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(out), meta_file=valid, exclude_meta_file=test)
    # a test video: nothing of it is written
    with pytest.raises(
            ValueError,
            match=r'video b exp 0: video b is listed in exclude_meta_file '
            r'.*test\.json \(a test video'):
        metric.process({}, [_sample('b', '0', ['00000', '00005'])])
    assert not (out / 'Annotations' / 'b').exists()
    with pytest.raises(ValueError,
                       match=r'video z is not in meta_file .*valid\.json'):
        metric.process({}, [_sample('z', '0', ['00000'])])
    with pytest.raises(ValueError,
                       match='expression 7 is not listed for video a'):
        metric.process({}, [_sample('a', '7', ['00005'])])
    with pytest.raises(ValueError,
                       match=r"frames \['00000'\] are not listed for video "
                       'a'):
        metric.process({}, [_sample('a', '0', ['00000', '00005'])])
    assert metric.results == []
    # without the exclusion, 'b' belongs to the submission
    metric = RefYTVOSSubmissionMetric(
        outfile_prefix=str(tmp_path / 'all'), meta_file=valid)
    metric.process({}, [_sample('b', '0', ['00000', '00005'])])
    assert len(metric.results) == 1


def test_meta_file_errors(tmp_path, valid_and_test):
    valid, test = valid_and_test
    with pytest.raises(ValueError, match='exclude_meta_file .* needs the '
                       'meta_file'):
        RefYTVOSSubmissionMetric(
            outfile_prefix=str(tmp_path), exclude_meta_file=test)
    with pytest.raises(FileNotFoundError,
                       match='exclude_meta_file not found: .*nowhere'):
        RefYTVOSSubmissionMetric(
            outfile_prefix=str(tmp_path),
            meta_file=valid,
            exclude_meta_file=str(tmp_path / 'nowhere.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(videos=dict(v=dict(frames=['0'])))))
    with pytest.raises(ValueError,
                       match=r'meta_file .*bad\.json: not a '
                       'meta_expressions.json'):
        RefYTVOSSubmissionMetric(
            outfile_prefix=str(tmp_path), meta_file=str(bad))


def test_mevis_zip_root_is_the_video_folders(tmp_path):
    meta = _write_meta(tmp_path / 'meta.json', {
        'v1': (['00000', '00001'], ['0']),
        'v2': (['00000'], ['0', '1'])
    })
    out = tmp_path / 'out'
    metric = MeViSSubmissionMetric(outfile_prefix=str(out), meta_file=meta)
    metric.process({}, [
        _sample('v1', '0', ['00000', '00001']),
        _sample('v2', '0', ['00000']),
        _sample('v2', '1', ['00000'])
    ])
    assert metric.evaluate(3) == {'mevis/num_expressions': 3}
    # the organisers' sample_submission_valid.zip layout
    with zipfile.ZipFile(str(out / 'submission.zip')) as zf:
        names = sorted(zf.namelist())
    assert names == [
        'v1/0/00000.png', 'v1/0/00001.png', 'v2/0/00000.png', 'v2/1/00000.png'
    ]
    assert osp.isfile(str(out / 'Annotations' / 'v2' / '1' / '00000.png'))
