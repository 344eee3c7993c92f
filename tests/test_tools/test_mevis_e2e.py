# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py and tools/test.py end to end on synthetic data in the
MeViS layout: training on expressions that refer to several objects, J&F of
the union masks on valid_u, a complete submission zip for valid (the video
folders at its root)."""
import glob
import json
import os.path as osp
import re
import subprocess
import sys
import zipfile

import pytest

from dmformer.datasets.synthetic_rvos import make_synthetic_rvos

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic-mevis.py')
CFG_VALID = osp.join(ROOT,
                     'configs/dmformer/dmformer_tiny_synthetic-mevis-valid.py')


def _run(args, timeout=600):
    proc = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic-mevis'))
    make_synthetic_rvos(
        root,
        num_train=2,
        num_valid=2,
        num_test=1,
        num_frames=4,
        size=64,
        seed=0,
        layout='mevis')
    return root + '/'


def _options(root, iters=2):
    """Arguments of tools/train.py and tools/test.py: the tiny MeViS root
    (--data-root moves the evaluators' label files with it) and a short
    schedule."""
    return [
        '--data-root',
        root,
        '--cfg-options',
        'load_from=None',  # no main-job checkpoint in a test
        'train_dataloader.batch_size=2',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
    ]


def test_mevis_train_test_valid(tmp_path, data_root):
    meta = json.load(open(osp.join(data_root, 'valid_u',
                                   'meta_expressions.json')))['videos']
    num_exps = sum(len(v['expressions']) for v in meta.values())
    assert any(
        len(e['obj_id']) > 1 for v in meta.values()
        for e in v['expressions'].values())

    work_dir = str(tmp_path / 'work')
    out = _run(
        [sys.executable, 'tools/train.py', CFG, '--work-dir', work_dir] +
        _options(data_root))
    assert 'mevis/J&F' in out  # validated on valid_u at the end
    ckpt = osp.join(work_dir, 'iter_2.pth')

    # valid_u: J&F against the union masks, plus a submission zip
    out = _run([
        sys.executable, 'tools/test.py', CFG, ckpt, '--work-dir',
        str(tmp_path / 'test_u')
    ] + _options(data_root))
    assert f"'mevis/num_expressions': {num_exps}" in out
    jf = float(re.search(r"'mevis/J&F': ([0-9.]+)", out).group(1))
    assert 0 <= jf <= 100

    # valid: no ground truth, a complete zip of every listed frame (under
    # bf16 autocast: tools/test.py --amp)
    test_dir = str(tmp_path / 'test_valid')
    out = _run([
        sys.executable, 'tools/test.py', CFG_VALID, ckpt, '--work-dir',
        test_dir, '--amp', 'bf16', '--data-root', data_root,
        '--cfg-options', 'load_from=None'
    ])
    assert 'mevis/J&F' not in out
    assert "amp='bf16'" in out  # the model config the runner logged
    zips = glob.glob(
        osp.join(test_dir, '*', 'MeViSSubmissionMetric', 'submission.zip'))
    assert len(zips) == 1, zips
    meta = json.load(open(osp.join(data_root, 'valid',
                                   'meta_expressions.json')))['videos']
    # the organisers' layout: the video folders at the archive root
    expected = {
        f'{vid}/{exp}/{frame}.png'
        for vid, v in meta.items() for exp in v['expressions']
        for frame in v['frames']
    }
    with zipfile.ZipFile(zips[0]) as zf:
        names = set(zf.namelist())
    assert names == expected
