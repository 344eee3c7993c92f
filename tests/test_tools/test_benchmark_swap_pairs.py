# Copyright (c) OpenMMLab. All rights reserved.
import json
import os.path as osp

import pytest

from dmformer.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    return load_script('tools/analysis_tools/benchmark_swap_pairs.py')


def test_summarize_swap_pairs(tmp_path):
    tool = _tool()
    folder = tmp_path / 'meta_expressions' / 'valid'
    folder.mkdir(parents=True)
    (folder / 'swap_pairs.json').write_text(
        json.dumps({'pairs': [[['v', '0'], ['v', '1']]]}))
    keys = tool.load_swap_keys(str(tmp_path))
    assert keys == [('v', '0'), ('v', '1')]
    per_exp = {
        'v': {
            '0': dict(J=0.9, F=0.7, JF=0.8),
            '1': dict(J=0.1, F=0.3, JF=0.2),
            '2': dict(J=1.0, F=1.0, JF=1.0),
        }
    }
    res = tool.summarize(per_exp, keys)
    assert res['J&F'] == pytest.approx(100 * 2.0 / 3)
    assert res['swap J&F'] == pytest.approx(50.0)
    assert res['swap pairs solved %'] == 0.0  # J of exp '1' <= 0.5
    per_exp['v']['1']['J'] = 0.6
    assert tool.summarize(per_exp, keys)['swap pairs solved %'] == 100.0
    del per_exp['v']['1']
    with pytest.raises(ValueError, match='without a score'):
        tool.summarize(per_exp, keys)
    with pytest.raises(FileNotFoundError, match='make_synthetic_rvos'):
        tool.load_swap_keys(str(tmp_path / 'missing'))


def test_schedule_is_stretched_with_the_budget():
    tool = _tool()
    cfg = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic.py')
    assert tool.schedule_options(cfg, 1400) == [
        'param_scheduler.1.milestones=[1120]', 'param_scheduler.1.end=1400'
    ]


def test_format_table():
    tool = _tool()
    runs = [{'J&F': 50., 'swap J&F': 40., 'swap pairs solved': 6},
            {'J&F': 60., 'swap J&F': 50., 'swap pairs solved': 8}]
    res = dict(
        mean={k: sum(r[k] for r in runs) / 2 for k in runs[0]},
        std={'J&F': 5., 'swap J&F': 5., 'swap pairs solved': 1.})
    table = tool.format_table({'dmformer_tiny_synthetic': res})
    lines = table.splitlines()
    assert lines[0] == '| config | J&F | swap J&F | swap pairs solved |'
    assert lines[2] == ('| `dmformer_tiny_synthetic` | 55.00 ± 5.00 | '
                        '45.00 ± 5.00 | 7.00 ± 1.00 |')
