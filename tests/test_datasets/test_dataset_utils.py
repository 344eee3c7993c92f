# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from dmformer.datasets.utils import check_subject_span, load_json


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
