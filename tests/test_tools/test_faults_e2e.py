# Copyright (c) OpenMMLab. All rights reserved.
"""Long runs survive faults: tools/train.py, tools/test.py and
tools/dist_train.sh end to end on the tiny synthetic dataset (see
test_train_test_e2e.py) with a process killed while it writes a
checkpoint, a full or read-only disk, NaN losses and a dead or hung rank
of a two-node run."""
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_test_e2e import CFG, ROOT, _data_args, _losses

from dmformer.datasets.synthetic_rvos import make_synthetic_rvos
from dmformer.engine import read_checkpoint
from dmformer.evaluation.metrics import RefYTVOSSubmissionMetric
from dmformer.utils.cli import format_user_error


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """The tiny dataset of test_train_test_e2e.py."""
    root = str(tmp_path_factory.mktemp('synthetic'))
    make_synthetic_rvos(
        root, num_train=2, num_valid=2, num_frames=4, size=64, seed=0)
    return root


# Runs a tool with builtins.open patched so that the first write of a file
# of $STALL_DIR whose name contains $STALL_NAME stores half its bytes,
# touches $STALL_MARKER and hangs: the process is then killed in the middle
# of writing that file, however the file is named while it is written.
STALL_DRIVER = '''
import builtins, os, runpy, sys, time

STALL_DIR = os.environ['STALL_DIR']
STALL_NAME = os.environ['STALL_NAME']
STALL_MARKER = os.environ['STALL_MARKER']
_open = builtins.open


class _Stalled:

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        _open(STALL_MARKER, 'w').close()
        time.sleep(3600)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def _open_stalling(file, mode='r', *args, **kwargs):
    f = _open(file, mode, *args, **kwargs)
    if isinstance(file, str) and ('w' in mode or 'x' in mode) and \\
            os.path.dirname(os.path.abspath(file)) == STALL_DIR and \\
            STALL_NAME in os.path.basename(file):
        return _Stalled(f)
    return f


builtins.open = _open_stalling
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def _run(args, env=None, timeout=600):
    """Run a command in the repository; return (status, stdout + stderr)."""
    proc = subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})))
    return proc.returncode, proc.stdout + proc.stderr


def _weights(path):
    return read_checkpoint(path)['state_dict']


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_kill_during_a_checkpoint_write_then_resume(tmp_path, data_root):
    work_dir = tmp_path / 'work'
    train = ['tools/train.py', CFG, '--work-dir', str(work_dir),
             '--no-validate'] + _data_args(data_root, 6) + [
                 'default_hooks.checkpoint.interval=2']
    driver = tmp_path / 'stall.py'
    driver.write_text(STALL_DRIVER)
    marker = tmp_path / 'writing'
    log_path = tmp_path / 'killed.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, str(driver)] + train,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(
                os.environ,
                STALL_DIR=str(work_dir),
                STALL_NAME='iter_4.pth',
                STALL_MARKER=str(marker)))
        try:
            deadline = time.time() + 400
            while not marker.exists():
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.time() < deadline, 'iter_4.pth never written'
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    # killed half way through iter_4.pth: no such file, iter_2 complete
    assert not (work_dir / 'iter_4.pth').exists()
    assert read_checkpoint(str(work_dir / 'iter_2.pth'))['meta']['iter'] == 2
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir /
                                                             'iter_2.pth')
    unfinished = [n for n in os.listdir(work_dir) if n.endswith('.part')]
    assert len(unfinished) == 1 and unfinished[0].startswith('.iter_4.pth.')

    # what a run killed while writing in place (before this fix, or another
    # tool) leaves: a truncated newest checkpoint; --resume skips it
    data = (work_dir / 'iter_2.pth').read_bytes()
    (work_dir / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    status, out = _run([sys.executable] + train + ['--resume'])
    assert status == 0, out[-3000:]
    assert re.search(
        rf'^--resume: skipped {work_dir}/iter_4.pth: not a readable '
        r'checkpoint, truncated or corrupt \(.+\)$', out, re.M), out[-3000:]
    assert f'\n--resume: from {work_dir}/iter_2.pth\n' in out
    assert 'removed the unfinished write of a killed run: ' \
        f'{work_dir}/{unfinished[0]}' in out
    resumed = _losses(out)
    assert min(resumed) == 3 and max(resumed) == 6
    assert read_checkpoint(str(work_dir / 'iter_6.pth'))['meta']['iter'] == 6
    assert not [n for n in os.listdir(work_dir) if n.endswith('.part')]


NAN_MODULE = '''
from dmformer.models.detectors.dmformer import DMFormer
from dmformer.registry import MODELS


@MODELS.register_module()
class NaNLossDMFormer(DMFormer):
    """DMFormer whose ``nan_term`` is NaN from the ``nan_from``-th
    training step on."""

    def __init__(self, nan_from, nan_term, **kwargs):
        super().__init__(**kwargs)
        self.nan_from = nan_from
        self.nan_term = nan_term
        self.steps = 0

    def loss(self, inputs, data_samples):
        losses = super().loss(inputs, data_samples)
        self.steps += 1
        if self.steps >= self.nan_from:
            losses[self.nan_term] = losses[self.nan_term] * float('nan')
        return losses
'''


@pytest.mark.slow
def test_nonfinite_losses_are_skipped_then_stop_the_run(tmp_path, data_root):
    (tmp_path / 'nan_loss_dmformer.py').write_text(NAN_MODULE)
    cfg = tmp_path / 'nan_from_3.py'
    cfg.write_text(
        f"_base_ = '{CFG}'\n"
        "custom_imports = dict(imports=['nan_loss_dmformer'])\n"
        "model = dict(type='NaNLossDMFormer', nan_from=3, "
        "nan_term='loss_mask')\n")
    work_dir = tmp_path / 'work'
    status, out = _run(
        [sys.executable, 'tools/train.py',
         str(cfg), '--work-dir',
         str(work_dir), '--no-validate'] + _data_args(data_root, 10) + [
             'default_hooks.checkpoint.interval=2',
             'default_hooks.nonfinite_loss.max_consecutive_steps=3'
         ],
        env=dict(PYTHONPATH=f'{tmp_path}:{ROOT}'))
    assert status == 1, out[-3000:]
    for it, count in ((3, 1), (4, 2)):
        assert f'iteration {it}: non-finite loss_mask=nan: skipped the ' \
            f'update ({count} in a row, {count} in this run; the run stops ' \
            'at 3 in a row)' in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith(
        'error: non-finite loss in 3 consecutive training steps (iterations '
        '3-5), last loss_mask=nan: stopped without updating the weights with '
        'them, the checkpoints written so far are intact')
    assert sorted(n for n in os.listdir(work_dir) if n.endswith('.pth')) == [
        'iter_2.pth', 'iter_4.pth'
    ]
    # the steps 3 and 4 were skipped: iter_4.pth holds the weights and the
    # optimizer state of iter_2.pth, both load
    iter_2 = read_checkpoint(str(work_dir / 'iter_2.pth'))
    iter_4 = read_checkpoint(str(work_dir / 'iter_4.pth'))
    _assert_same_weights(iter_2['state_dict'], iter_4['state_dict'])
    for a, b in zip(iter_2['optimizer']['state'].values(),
                    iter_4['optimizer']['state'].values()):
        _assert_same_weights(a, b)


def _mount_tmpfs(folder, options):
    """Mount a tmpfs (needs root and mount rights); False if impossible."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs',
         str(folder)],
        capture_output=True)
    return proc.returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 MiB tmpfs: logs fit, a checkpoint (> 90 MB: MiniLM) does not."""
    folder = tmp_path / 'small_disk'
    if not _mount_tmpfs(folder, 'size=16m'):
        pytest.skip('cannot mount a tmpfs here (needs root)')
    yield folder
    subprocess.run(['umount', '-l', str(folder)])


@pytest.mark.slow
def test_full_disk_during_a_checkpoint_write(small_tmpfs, data_root):
    work_dir = small_tmpfs / 'work'
    status, out = _run([
        sys.executable, 'tools/train.py', CFG, '--work-dir',
        str(work_dir), '--no-validate'] + _data_args(data_root, 2))
    assert status == 2, out[-3000:]
    assert out.strip().splitlines()[-1] == (
        f'error: No space left on device ({work_dir}/iter_2.pth)')
    assert not [n for n in os.listdir(work_dir) if '.pth' in n]
    assert not (work_dir / 'last_checkpoint').exists()


def _fake_checkpoint(path):
    torch.save(dict(state_dict={'w': torch.zeros(1)}), str(path))
    return str(path)


@pytest.mark.slow
def test_test_tool_refuses_an_unwritable_work_dir(tmp_path, data_root):
    """Before any inference: a work dir under a file (root can write into
    a chmod-ed folder, so that is not a test), and, where a tmpfs can be
    mounted, a read-only and a full file system."""
    ckpt = _fake_checkpoint(tmp_path / 'ckpt.pth')
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    cases = [(a_file / 'work', 'Not a directory')]
    read_only, full = tmp_path / 'ro', tmp_path / 'full'
    if _mount_tmpfs(read_only, 'ro,size=64k'):
        cases.append((read_only / 'work', 'Read-only file system'))
    if _mount_tmpfs(full, 'size=64k'):
        os.makedirs(full / 'work')
        with pytest.raises(OSError) as err, open(full / 'ballast', 'wb') as f:
            while True:
                f.write(bytes(4096))
                f.flush()
        assert err.value.errno == errno.ENOSPC
        cases.append((full / 'work', 'No space left on device'))
    try:
        for work_dir, reason in cases:
            status, out = _run([
                sys.executable, 'tools/test.py', CFG, ckpt, '--work-dir',
                str(work_dir)] + _data_args(data_root, 2),
                timeout=120)
            assert status == 2, out[-3000:]
            assert out.strip().splitlines()[-1] == (
                f'error: cannot write into the work dir: {reason} '
                f'({work_dir})')
            assert 'Iter(test)' not in out  # no inference ran
    finally:
        for folder in (read_only, full):
            subprocess.run(['umount', '-l', str(folder)], capture_output=True)


@pytest.mark.skipif(
    not os.path.exists('/dev/full'), reason='needs /dev/full (Linux)')
def test_full_disk_while_writing_the_submission_pngs(tmp_path):
    """A real ENOSPC: the third PNG's path is a link to /dev/full, where
    every write fails with "No space left on device". The error names that
    file, the PNGs written before it stay, no partial file is left."""
    metric = RefYTVOSSubmissionMetric(outfile_prefix=str(tmp_path))
    folder = tmp_path / 'Annotations' / 'v1' / '0'
    folder.mkdir(parents=True)
    os.symlink('/dev/full', folder / '00010.png')
    pred = torch.zeros(4, 6, 8, dtype=torch.bool)
    pred[:, 1:4, 2:6] = True
    sample = dict(
        video_id='v1',
        exp_id='0',
        frame_ids=['00000', '00005', '00010', '00015'],
        ori_shape=(6, 8),
        pred_instances=dict(masks=pred))
    with pytest.raises(OSError) as err:
        metric.process({}, [sample])
    assert err.value.errno == errno.ENOSPC
    assert format_user_error(err.value) == (
        'cannot write a submission PNG, the earlier ones are kept: No space '
        f'left on device ({folder}/00010.png)')
    assert sorted(os.listdir(folder)) == ['00000.png', '00005.png']
    for name in ('00000.png', '00005.png'):
        with Image.open(folder / name) as png:
            assert (np.asarray(png) > 0).sum() == 12


def _children(pid):
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces
        if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _descendants(pid):
    """Process ids below ``pid`` (children, grandchildren, ...)."""
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _train_worker(pid):
    """The tools/train.py worker under the launcher process ``pid``."""
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f'/proc/{current}/cmdline', 'rb') as f:
                cmdline = f.read().split(b'\0')
        except OSError:
            continue
        if any(arg.endswith(b'tools/train.py') for arg in cmdline) and \
                b'torch.distributed.run' not in cmdline:
            return current
        todo += _children(current)
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGSTOP],
                         ids=['dead', 'hung'])
def test_two_nodes_end_when_a_rank_dies_or_hangs(tmp_path, data_root, sig):
    """Two torchrun "nodes" on localhost (gloo); node 1's worker is killed
    (or stopped: a hung rank, e.g. a GPU stuck in a kernel) mid-run. Node 0
    must end, non-zero, within the 20 s process-group timeout plus the
    roll call (20 s) plus a margin, saying which rank stopped answering."""
    timeout = 20
    port = str(_free_port())
    args = ['bash', 'tools/dist_train.sh', CFG, '1', '--work-dir',
            str(tmp_path / 'work'), '--no-validate'
            ] + _data_args(data_root, 1000) + [
                'default_hooks.checkpoint.interval=1000',
                f'env_cfg.dist_cfg.timeout={timeout}'
            ]
    nodes, logs, worker = [], [], None
    try:
        for rank in (0, 1):
            logs.append(tmp_path / f'node{rank}.log')
            nodes.append(
                subprocess.Popen(
                    args,
                    cwd=ROOT,
                    stdout=open(logs[-1], 'w'),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=dict(
                        os.environ,
                        NNODES='2',
                        NODE_RANK=str(rank),
                        MASTER_ADDR='127.0.0.1',
                        PORT=port,
                        OMP_NUM_THREADS='1')))
        deadline = time.time() + 400
        while 3 not in _losses(logs[0].read_text()):
            assert nodes[0].poll() is None, logs[0].read_text()[-3000:]
            assert time.time() < deadline, 'iteration 3 never logged'
            time.sleep(0.2)
        worker = _train_worker(nodes[1].pid)
        assert worker is not None
        os.kill(worker, sig)
        killed_at = time.time()
        status = nodes[0].wait(timeout=timeout + 20 + 60)
        took = time.time() - killed_at
        assert status != 0
        assert took < timeout + 20 + 30, took
        out = logs[0].read_text()
        errors = [ln for ln in out.splitlines() if ln.startswith('error: ')]
        assert errors == [errors[0]] and errors[0].startswith(
            'error: rank 0: a collective operation failed, rank 1 did not '
            'answer within 20 s (dead or hung; see its log); process-group '
            f'timeout env_cfg.dist_cfg.timeout: {timeout} s (RuntimeError: ')
        if sig == signal.SIGKILL:
            assert nodes[1].wait(timeout=60) != 0  # node 1 ended too
            assert 'Signal 9 (SIGKILL) received by PID' in logs[1].read_text()
        else:
            assert 'Timed out waiting' in errors[0]
    finally:
        # torchrun starts its workers in sessions of their own: the stopped
        # worker and its children are not in the launchers' process groups
        stray = _descendants(worker) + [worker] if worker else []
        for pid in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for node in nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.wait()
