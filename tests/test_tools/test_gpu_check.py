# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/gpu_check.py: the CPU mode end to end, its failure
path and the pieces that read the training runs."""
import argparse
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, DictAction

from dmformer.testing import REPO_ROOT, load_script

TOOL = 'tools/analysis_tools/gpu_check.py'
gpu_check = load_script(TOOL)

#: the rows of the CPU mode, in order, and the status each must have
CPU_ROWS = [
    ('deform-attn CUDA kernel vs PyTorch, float32, fwd+bwd',
     'skipped (no CUDA)'),
    ('deform-attn CUDA kernel vs PyTorch, float64, fwd+bwd',
     'skipped (no CUDA)'),
    ('deform-attn CPU gather vs PyTorch, float32, forward', 'pass'),
    ('deform-attn CPU gather vs PyTorch, float64, forward', 'pass'),
    ('MSDeformAttn vs mmcv module, float64, fwd+bwd', 'pass'),
    ('fp16 autocast vs float32, paper config', 'skipped (no CUDA)'),
    ('bf16 autocast vs float32, tiny config (cpu)', 'pass'),
    ('inference, paper config, 5 x 360 x 640 (cuda)', 'skipped (no CUDA)'),
    ('train 20 iters, paper config (cuda)', 'skipped (no CUDA)'),
    ('train 2 iters, tiny config (cpu)', 'pass'),
    ('dist_train.sh CONFIG 1, 3 iters, nccl, paper config (cuda)',
     'skipped (no CUDA)'),
    ('dist_train.sh CONFIG 1, 2 iters, gloo, tiny config (cpu)', 'pass'),
]


def _run(args, timeout=300):
    return subprocess.run([sys.executable, TOOL] + args,
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def _table(stdout):
    """{check: status} of the printed table, in order."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith('check ') and line.endswith('status'))
    rows = {}
    for line in lines[start + 1:]:
        for check, _ in CPU_ROWS:
            if line.startswith(check + '  '):
                rows[check] = line.rsplit('  ', 1)[1].strip()
    return rows


def test_cpu_mode_end_to_end(tmp_path):
    path = tmp_path / 'check.json'
    proc = _run(['--device', 'cpu', '--work-dir',
                 str(tmp_path / 'work'), '--json',
                 str(path)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _table(proc.stdout) == dict(CPU_ROWS)
    assert 'all 6 checks that ran passed' in proc.stdout
    saved = json.loads(path.read_text())
    rows = {row['check']: row for row in saved['rows']}
    assert [row['check'] for row in saved['rows']] == [c for c, _ in CPU_ROWS]
    # the figures behind the table
    gather = rows['deform-attn CPU gather vs PyTorch, float64, forward']
    assert gather['info']['max_rel_diff'] <= 1e-10
    amp = rows['bf16 autocast vs float32, tiny config (cpu)']['info']
    min_iou, max_diff = gpu_check.AMP_LIMITS['bf16']
    assert min_iou <= amp['mean_iou'] <= 1
    assert 0 < amp['logit_rel_diff'] <= max_diff
    for name in ('train 2 iters, tiny config (cpu)',
                 'dist_train.sh CONFIG 1, 2 iters, gloo, tiny config (cpu)'):
        info = rows[name]['info']
        assert info['seconds_per_iter'] > 0
        assert math.isfinite(info['last_loss'])
        assert 'peak_memory_mib' not in info  # logged on CUDA only
    assert rows['dist_train.sh CONFIG 1, 2 iters, gloo, tiny config (cpu)'][
        'result'].startswith('gloo, loss ')
    # the synthetic data and both runs stayed in --work-dir
    assert osp.isfile(tmp_path / 'work' / 'data' / 'synthetic_rvos_info.json')


def test_failing_check_gives_non_zero_exit(tmp_path):
    # no tolerance: the float rounding of the two paths differs
    proc = _run(['--device', 'cpu', '--checks', 'msda', '--tol-scale', '0'])
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = _table(proc.stdout)
    for dtype in ('float32', 'float64'):
        assert rows[f'deform-attn CPU gather vs PyTorch, {dtype}, forward'] \
            == 'FAIL'
    assert 'checks failed' in proc.stdout
    assert 'limit 0e+00' in proc.stdout


@pytest.mark.parametrize('args, message', [
    (['--checks', 'msda,speed'], '--checks: unknown speed; choose among'),
    (['--checks', ','], '--checks: unknown (none); choose among'),
    (['--train-iters', '0'], '--train-iters must be >= 1, got 0'),
    (['--dist-iters', '-2'], '--dist-iters must be >= 1, got -2'),
    (['--tol-scale', '-1'], '--tol-scale must be >= 0, got -1.0'),
    (['--timeout', '0'], '--timeout must be positive, got 0.0'),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(
            ')', r'\)')):
        gpu_check.resolve(gpu_check.parse_args(args))


def test_bad_argument_is_one_line_from_the_command():
    proc = _run(['--checks', 'speed'])
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        'error: --checks: unknown speed; choose among msda, amp, infer, '
        'train, dist')


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
def test_cuda_request_without_cuda():
    with pytest.raises(ValueError, match='--device cuda: CUDA is not '
                       'available'):
        gpu_check.resolve(gpu_check.parse_args(['--device', 'cuda']))


def _records(n, **extra):
    return [dict(loss=10. - i, time=0.5 + i, **extra) for i in range(n)]


def test_training_row():
    row = gpu_check.training_row(0, '', _records(8, memory=1000), 8)
    assert row.status == 'pass'
    # median after 2 warm-up iterations (a quarter): times 2.5 ... 7.5
    assert row.info['seconds_per_iter'] == 5.0
    assert row.info['peak_memory_mib'] == 1000
    assert row.figure == '5.000 s/iter, peak 1000 MiB'
    assert row.result == 'loss 10.000 -> 3.000'
    # a crash, a short run and a diverged loss fail
    row = gpu_check.training_row(1, 'Traceback\nRuntimeError: boom\n', [], 8)
    assert (row.status, row.result) == ('FAIL', 'exit 1: RuntimeError: boom')
    row = gpu_check.training_row(0, '', _records(3), 8)
    assert (row.status, row.result) == ('FAIL', '3 of 8 iterations logged')
    records = _records(2)
    records[1]['loss'] = float('nan')
    assert gpu_check.training_row(0, '', records, 2).status == 'FAIL'


def test_train_options():
    paper = gpu_check.train_options(gpu_check.PAPER_CONFIG, 20, cuda=True)
    assert 'train_cfg.max_iters=20' in paper and 'load_from=None' in paper
    hooks = Config.fromfile(osp.join(REPO_ROOT, gpu_check.PAPER_CONFIG)).get(
        'default_hooks', {})
    assert ('default_hooks.pretrained_weights.check_frozen=False'
            in paper) == ('pretrained_weights' in hooks)
    tiny = gpu_check.train_options(gpu_check.TINY_CONFIG, 2, cuda=False)
    assert 'train_dataloader.batch_size=2' in tiny
    assert 'load_from=None' not in tiny
    # an epoch-based schedule becomes 20 iterations, logged one by one
    cfg = Config.fromfile(osp.join(REPO_ROOT, gpu_check.PAPER_CONFIG))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options'] +
                                          paper).cfg_options)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=20,
                                 val_interval=20)
    assert cfg.log_processor.window_size == 1
    assert cfg.default_hooks.checkpoint.save_last is False


def test_compare():
    f64 = dict(dtype=torch.float64)
    a = [torch.tensor([1., 2.], **f64), torch.tensor([10., -20.])]
    b = [torch.tensor([1., 2.1], **f64), torch.tensor([10., -20.])]
    err, where = gpu_check.compare(b, a, ['x', 'y'])
    assert where == 'x' and math.isclose(err, 0.1 / 2)
    err, where = gpu_check.compare([torch.tensor([float('nan')])],
                                   [torch.tensor([1.])], ['z'])
    assert (err, where) == (math.inf, 'z')
    assert gpu_check.compare([torch.zeros(2)], [torch.zeros(3)],
                             ['s']) == (math.inf, 's')
