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


def test_runs_point_train_and_test_at_the_data_roots(
        tmp_path, monkeypatch):
    """Training and held-out scoring hand their data roots to the tools'
    --data-root, which also moves the evaluators' label files."""
    tool = _tool()
    cmds = []

    def fake_run(cmd, log_file, env):
        cmds.append(cmd)
        out = [c for c in cmd if 'per_expression_file=' in c][0]
        with open(out.split('=', 1)[1], 'w') as f:
            json.dump({'v': {}}, f)

    monkeypatch.setattr(tool, '_run', fake_run)
    (tmp_path / 'last_checkpoint').write_text('ckpt.pth')
    cfg = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic.py')
    tool.train_and_score(cfg, 3, 20, 'DATA/', str(tmp_path))
    tool.score_heldout(cfg, str(tmp_path), 'HELD')
    train_cmd, test_cmd = cmds
    assert train_cmd[train_cmd.index('--data-root') + 1] == 'DATA/'
    assert 'randomness.seed=3' in train_cmd
    assert test_cmd[1].endswith('tools/test.py')
    assert test_cmd[test_cmd.index('--data-root') + 1] == 'HELD'
    assert 'ckpt.pth' in test_cmd


def test_thread_env_splits_the_cores(monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool.os, 'cpu_count', lambda: 2)
    assert tool.thread_env(1) is None
    assert tool.thread_env(2)['OMP_NUM_THREADS'] == '1'
    assert tool.thread_env(4)['MKL_NUM_THREADS'] == '1'


def test_main_tables_per_split(tmp_path, monkeypatch, capsys):
    """Every (config, seed) run is trained once and scored on both splits;
    the JSON holds one table per split, in config order, with --jobs 2."""
    tool = _tool()
    for name in ('valid', 'heldout'):
        folder = tmp_path / name / 'meta_expressions' / 'valid'
        folder.mkdir(parents=True)
        (folder / 'swap_pairs.json').write_text(
            json.dumps({'pairs': [[['v', '0'], ['v', '1']]]}))
    trained = []

    def fake_train(config, seed, iters, data_root, work_dir, env=None):
        trained.append((osp.basename(config), seed, env['OMP_NUM_THREADS']))
        good = 'context-only' not in config
        return {'v': {'0': dict(J=0.9, F=0.9, JF=0.9),
                      '1': dict(J=0.8 if good else 0.2, F=0.8, JF=0.8)}}

    def fake_heldout(config, work_dir, root, env=None):
        return {'v': {'0': dict(J=0.6, F=0.6, JF=0.6),
                      '1': dict(J=0.7, F=0.7, JF=0.7)}}

    monkeypatch.setattr(tool, 'train_and_score', fake_train)
    monkeypatch.setattr(tool, 'score_heldout', fake_heldout)
    monkeypatch.setattr(tool.os, 'cpu_count', lambda: 2)
    out = tmp_path / 'res.json'
    configs = [
        osp.join(ROOT, 'configs/dmformer', name) for name in (
            'dmformer_tiny_synthetic_attr-pretrained.py',
            'dmformer_tiny_synthetic_attr-pretrained_context-only.py')
    ]
    monkeypatch.setattr(tool.sys, 'argv', [
        'benchmark_swap_pairs.py', '--configs', *configs, '--seeds', '0',
        '1', '--data-root',
        str(tmp_path / 'valid'), '--heldout-data-root',
        str(tmp_path / 'heldout'), '--jobs', '2', '--work-dir',
        str(tmp_path / 'work'), '--json',
        str(out)
    ])
    tool.main()
    assert sorted(trained) == sorted(
        (osp.basename(c), s, '1') for c in configs for s in (0, 1))
    res = json.load(open(out))
    assert list(res) == ['valid', 'held-out']
    valid = res['valid']
    assert list(valid) == [
        'dmformer_tiny_synthetic_attr-pretrained',
        'dmformer_tiny_synthetic_attr-pretrained_context-only'
    ]
    assert valid['dmformer_tiny_synthetic_attr-pretrained']['mean'][
        'swap pairs solved'] == 1
    assert valid['dmformer_tiny_synthetic_attr-pretrained_context-only'][
        'mean']['swap pairs solved'] == 0
    heldout = res['held-out']['dmformer_tiny_synthetic_attr-pretrained']
    assert heldout['mean']['swap pairs solved'] == 1
    printed = capsys.readouterr().out
    assert 'held-out split' in printed and 'valid split' in printed


def test_jobs_must_be_positive(monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool.sys, 'argv',
                        ['benchmark_swap_pairs.py', '--jobs', '0'])
    with pytest.raises(ValueError, match='--jobs'):
        tool.main()
