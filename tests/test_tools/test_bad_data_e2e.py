# Copyright (c) OpenMMLab. All rights reserved.
"""Bad files in the middle of a dataset, end to end: training skips the
unreadable samples up to a share (and stops with one line past it), and an
error raised in a DataLoader worker is the same one line as without
workers."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from dmformer.datasets.synthetic_rvos import make_synthetic_rvos
from dmformer.registry import MODELS
from dmformer.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """8 training videos of 3 frames; the first frame of the first video,
    the anchor of every clip of its expressions, is corrupt."""
    root = str(tmp_path_factory.mktemp('bad-data'))
    make_synthetic_rvos(
        root, num_train=8, num_valid=1, num_frames=3, size=64, seed=0)
    bad = osp.join(root, 'train', 'JPEGImages', 'train_0000', '00000.jpg')
    with open(bad, 'wb') as f:
        f.write(b'\xff\xd8 not a jpeg any more')
    return root


def _train(work_dir, data_root, *options):
    return subprocess.run(
        [sys.executable, 'tools/train.py', CFG, '--work-dir', work_dir,
         '--data-root', data_root, '--no-validate', '--cfg-options',
         'train_dataloader.batch_size=2', 'train_dataloader.num_workers=2',
         'train_dataloader.persistent_workers=False',
         'train_dataloader.sampler.shuffle=False', 'train_cfg.max_iters=3',
         'default_hooks.checkpoint.interval=3',
         'default_hooks.logger.interval=1'] + list(options),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600)


def test_training_skips_a_corrupt_frame_and_reports_it(tmp_path, data_root):
    # the first video's samples come first (no shuffling), so they are drawn
    work_dir = str(tmp_path / 'skip')
    proc = _train(work_dir, data_root,
                  'train_dataloader.dataset.max_bad_sample_ratio=0.25')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'skipped, another is drawn: Cannot read frame' in out
    assert 'train_0000/00000.jpg' in out
    assert 'unreadable training samples in this process' in out
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))


def test_training_stops_in_one_line_past_the_share(tmp_path, data_root):
    # default share (1%) of this small set: not one sample may fail
    proc = _train(str(tmp_path / 'stop'), data_root)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: Cannot read frame ')
    assert 'train_0000/00000.jpg' in last
    assert 'DataLoader worker' not in last and 'Traceback' not in last


@pytest.mark.parametrize('num_workers', [0, 2])
def test_test_tool_worker_error_is_the_original_line(tmp_path, data_root,
                                                     num_workers):
    """tools/test.py on a valid split whose frame is missing: the same one
    line with and without DataLoader workers."""
    root = str(tmp_path / 'data')
    shutil.copytree(data_root, root)
    valid = osp.join(root, 'valid', 'JPEGImages', 'valid_0000')
    missing = osp.join(valid, sorted(os.listdir(valid))[1])
    os.remove(missing)
    ckpt = str(tmp_path / 'random.pth')
    register_all_modules()
    model = MODELS.build(Config.fromfile(CFG).model)
    torch.save({'state_dict': model.state_dict()}, ckpt)
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', CFG, ckpt, '--work-dir',
         str(tmp_path / 'test'), '--data-root', root, '--cfg-options',
         f'test_dataloader.num_workers={num_workers}',
         'test_dataloader.persistent_workers=False'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), last
    assert osp.basename(missing) in last and 'valid_0000' in last
    assert 'DataLoader worker' not in last and 'Traceback' not in last
