# Copyright (c) OpenMMLab. All rights reserved.
import logging

import pytest
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from dmformer.datasets.utils import (SkipBadSamplesMixin, check_subject_span,
                                     load_json)


def test_load_json_names_the_file(tmp_path):
    good = tmp_path / 'a.json'
    good.write_text('{"videos": {}}')
    assert load_json(str(good), 'Meta file') == {'videos': {}}
    with pytest.raises(FileNotFoundError, match=r"Meta file .*b\.json"):
        load_json(str(tmp_path / 'b.json'), 'Meta file')
    bad = tmp_path / 'c.json'
    bad.write_text('{"videos": ')
    with pytest.raises(ValueError, match=r"Meta file .*c\.json.*not valid"):
        load_json(str(bad), 'Meta file')


def test_check_subject_span():
    assert check_subject_span((0, 3), 'a dog', 'v', 'l.json') == [0, 3]
    for span in ([3, 3], [0, 6], [0.0, 2], [1], None):
        with pytest.raises(ValueError, match="of v in 'l.json'"):
            check_subject_span(span, 'a dog', 'v', 'l.json')


class _Flaky:
    """A pipeline step that fails on the listed sample indices."""

    def __init__(self, bad, error=FileNotFoundError):
        self.bad, self.error = set(bad), error

    def __call__(self, results):
        if results['idx'] in self.bad:
            raise self.error(f'Frame file /data/{results["idx"]}.jpg does '
                             'not exist.')
        return results


def _dataset(bad, ratio, test_mode=False, size=20, error=FileNotFoundError):

    class Toy(SkipBadSamplesMixin, BaseDataset):

        def __init__(self, **kwargs):
            self._init_bad_samples(ratio)
            super().__init__(**kwargs)

        def load_data_list(self):
            return [dict(idx=i) for i in range(size)]

    return Toy(pipeline=[_Flaky(bad, error)], test_mode=test_mode)


def test_bad_training_samples_are_skipped_up_to_a_share():
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    MMLogger.get_current_instance().addHandler(handler)
    try:
        dataset = _dataset(bad={3}, ratio=0.1)  # 2 of 20 may fail
        out = dataset[3]
    finally:
        MMLogger.get_current_instance().removeHandler(handler)
    assert out['idx'] != 3  # another sample was drawn
    assert dataset._num_bad_samples == 1
    assert any('sample 3 skipped, another is drawn: Frame file '
               '/data/3.jpg does not exist. [1 unreadable training samples '
               'in this process, 2 allowed' in m for m in messages)


def test_too_many_bad_samples_stop_the_run():
    dataset = _dataset(bad=set(range(20)), ratio=0.1)
    with pytest.raises(FileNotFoundError,
                       match=r'does not exist\. \[3 unreadable training '
                       r'samples in this process, 2 allowed .*the dataset '
                       r'looks broken\]'):
        dataset[0]
    # an error type that cannot take a message alone still stops the run
    dataset = _dataset(
        bad=set(range(20)),
        ratio=0.1,
        error=lambda msg: UnicodeDecodeError('utf-8', b'', 0, 1, msg))
    with pytest.raises(ValueError, match='looks broken'):
        dataset[0]


def test_no_skipping_in_evaluation_or_when_off():
    with pytest.raises(FileNotFoundError, match=r'/data/3\.jpg'):
        _dataset(bad={3}, ratio=0.5, test_mode=True)[3]
    with pytest.raises(FileNotFoundError, match=r'^Frame file /data/3\.jpg'):
        _dataset(bad={3}, ratio=0.)[3]
    with pytest.raises(ValueError, match=r'max_bad_sample_ratio must be in'):
        _dataset(bad=(), ratio=1.5)
