# Copyright (c) OpenMMLab. All rights reserved.
"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on a
tiny synthetic dataset in the real Ref-YouTube-VOS layout."""
import glob
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from dmformer.datasets.synthetic_rvos import make_synthetic_rvos

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic.py')


def _run(args, env=None, timeout=600):
    proc = subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic'))
    make_synthetic_rvos(
        root, num_train=2, num_valid=2, num_frames=4, size=64, seed=0)
    return root


def _data_args(root, iters):
    """Arguments of tools/train.py and tools/test.py: the tiny data root
    (--data-root moves the evaluators' label files with it) and a short
    schedule."""
    return [
        '--data-root',
        root,
        '--cfg-options',
        'train_dataloader.batch_size=2',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1',
    ]


def test_train_resume_test(tmp_path, data_root):
    work_dir = str(tmp_path / 'work')
    out = _run(
        [sys.executable, 'tools/train.py', CFG, '--work-dir', work_dir] +
        _data_args(data_root, 2))
    assert 'rvos/J&F' in out  # validation at the end of training
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)

    # --resume continues from the last checkpoint of the work dir
    out = _run([
        sys.executable, 'tools/train.py', CFG, '--work-dir', work_dir,
        '--resume', '--no-validate'] + _data_args(data_root, 4))
    assert 'resumed' in out.lower()
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))

    test_dir = str(tmp_path / 'test')
    out = _run([
        sys.executable, 'tools/test.py', CFG, ckpt, '--work-dir', test_dir,
        '--show-dir', 'vis'] + _data_args(data_root, 2))
    for key in ('ref_ytvos/J:', 'ref_ytvos/F:', 'ref_ytvos/J&F:'):
        assert key in out
    # --data-root moved the evaluator's swap-pair file to the tiny root
    pairs = json.load(
        open(osp.join(data_root, 'meta_expressions/valid/swap_pairs.json')))
    assert f"'ref_ytvos/num_swap_pairs': {len(pairs['pairs'])}," in out
    jf = float(re.search(r'ref_ytvos/J&F: ([0-9.]+)', out).group(1))
    assert 0 <= jf <= 100

    # a complete submission: one PNG per listed (video, expression, frame)
    # written into the run's own folder <work-dir>/<timestamp>/
    zips = glob.glob(
        osp.join(test_dir, '*', 'RefYTVOSSubmissionMetric', 'submission.zip'))
    assert len(zips) == 1, zips
    zip_path = zips[0]
    assert osp.dirname(osp.dirname(zip_path)) in out
    meta = json.load(
        open(osp.join(data_root,
                      'meta_expressions/valid/meta_expressions.json')))
    expected = {
        f'Annotations/{vid}/{exp}/{frame}.png'
        for vid, v in meta['videos'].items() for exp in v['expressions']
        for frame in v['frames']
    }
    with zipfile.ZipFile(zip_path) as zf:
        names = {n for n in zf.namelist() if n.endswith('.png')}
    assert names == expected
    # --show-dir: one picture per expression in the run's folder
    pictures = glob.glob(osp.join(test_dir, '*', 'vis', '*', '*.jpg'))
    assert sorted(osp.relpath(p, osp.dirname(osp.dirname(p)))
                  for p in pictures) == sorted(
                      f'{vid}/{exp}.jpg' for vid, v in meta['videos'].items()
                      for exp in v['expressions'])


def test_test_tool_rejects_missing_checkpoint(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', CFG,
         str(tmp_path / 'missing.pth')],
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'checkpoint not found' in proc.stderr


def test_dist_train_two_cpu_processes(tmp_path, data_root):
    work_dir = str(tmp_path / 'dist')
    # the script runs $PYTHON (e.g. a virtualenv's), not `python` of PATH
    marker = tmp_path / 'python_used'
    wrapper = tmp_path / 'python'
    wrapper.write_text(f'#!/bin/sh\ntouch {marker}\n'
                       f'exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    out = _run(['bash', 'tools/dist_train.sh', CFG, '2', '--work-dir',
                work_dir, '--no-validate'] + _data_args(data_root, 2),
               env=dict(PORT='29517', OMP_NUM_THREADS='1',
                        PYTHON=str(wrapper)))
    assert marker.exists()
    assert 'using the gloo backend' in out
    assert 'Distributed training: True' in out
    assert 'GPU number: 2' in out  # MMEngine's name for the world size
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def test_test_tool_rejects_checkpoint_of_another_model(tmp_path, data_root):
    import torch
    ckpt = str(tmp_path / 'other.pth')
    torch.save(
        dict(state_dict={
            'backbone.patch_embed.projection.weight': torch.zeros(1),
            'other.weight': torch.zeros(2)
        }), ckpt)
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', CFG, ckpt, '--work-dir',
         str(tmp_path / 'test')] + _data_args(data_root, 2),
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {ckpt} does not fit')
    assert 'parameters are missing' in last
    assert 'backbone.patch_embed.projection.weight: (1,) in the file' in last
    assert '1 keys are not in the model (e.g. other.weight)' in last
    assert 'tools/model_converters/' in last
    assert '--allow-partial-checkpoint' in last


def _losses(log):
    """{iteration: 'loss' value as logged} of a training log."""
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r'Iter\(train\) \[\s*(\d+)/\d+\].*? loss: (\S+)',
                             log)
    }


def test_resume_after_sigkill_repeats_the_run(tmp_path, data_root):
    # dropout on, so that the random states matter
    opts = _data_args(data_root, 6) + [
        'default_hooks.checkpoint.interval=2',
        'model.bbox_head.decoder.layer_cfg.ffn_cfg.ffn_drop=0.2',
        'model.backbone.drop_path_rate=0.2'
    ]
    cmd = [sys.executable, 'tools/train.py', CFG, '--no-validate']
    full = _losses(
        _run(cmd + ['--work-dir', str(tmp_path / 'full')] + opts))
    assert sorted(full) == [1, 2, 3, 4, 5, 6]

    # killed with SIGKILL once iteration 3 is logged (checkpoint iter_2)
    work_dir = tmp_path / 'killed'
    log_path = tmp_path / 'killed.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            cmd + ['--work-dir', str(work_dir)] + opts,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            while 3 not in _losses(log_path.read_text()):
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.time() < deadline, 'iteration 3 never logged'
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert not (work_dir / 'iter_6.pth').exists()
    assert _losses(log_path.read_text()).items() <= full.items()

    resumed = _losses(
        _run(cmd + ['--work-dir', str(work_dir), '--resume'] + opts))
    assert osp.basename(
        (work_dir / 'last_checkpoint').read_text().strip()) == 'iter_6.pth'
    # resumed from iter_2 or iter_4 (whichever was written before the kill)
    assert min(resumed) in (3, 5) and max(resumed) == 6
    assert resumed == {i: full[i] for i in resumed}


# A few iterations of the paper model on CPU: 2 frames at 96 px (the
# multi-scale branch only), random GLIP weights allowed, 4 samples.
PAPER_SMOKE_OPTIONS = [
    'load_from=None',
    'default_hooks.pretrained_weights.check_frozen=False',
    'train_dataloader.dataset.indices=4',
    'train_cfg.max_epochs=1',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
    'train_dataloader.dataset.pipeline.0.num_frames=2',
    'train_dataloader.dataset.pipeline.5.prob=[1.0,0.0]',
    'train_dataloader.dataset.pipeline.5.transforms.0.0.scales=[96]',
    'train_dataloader.dataset.pipeline.5.transforms.0.0.max_size=128',
]


def test_specified_command_trains_the_paper_config(tmp_path, data_root):
    """``tools/dist_train.sh configs/dmformer_swin_t_ytvos.py 8`` as the
    method was specified, here with 2 CPU processes: the paper model (Swin-T
    + BERT-base) trains through the alias config."""
    work_dir = str(tmp_path / 'alias')
    out = _run(['bash', 'tools/dist_train.sh',
                'configs/dmformer_swin_t_ytvos.py', '2', '--work-dir',
                work_dir, '--data-root', data_root, '--cfg-options'] +
               PAPER_SMOKE_OPTIONS,
               env=dict(PORT='29519', OMP_NUM_THREADS='1'))
    assert 'GPU number: 2' in out
    assert 'GLIPSwinTransformer' in out  # the warning of check_frozen=False
    assert re.search(r'Epoch\(train\) \[1\]\[1/\d+\].*loss_subject', out)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


def _run_error(args):
    """Run a tool that must fail; return its stderr lines."""
    proc = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stderr.strip().splitlines()


def test_missing_load_from_stops_before_any_data_is_read(tmp_path):
    """The paper configs chain their weights: a missing file is one line
    saying what makes it, before the (absent) dataset is touched."""
    cfg = 'configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'
    empty_root = tmp_path / 'empty-data-root'  # no dataset files at all
    empty_root.mkdir()
    missing = str(tmp_path / 'work_dirs' /
                  'dmformer_swin-t_4xb2-10e_refcoco-pretrain' / 'epoch_10.pth')
    lines = _run_error([
        sys.executable, 'tools/train.py', cfg, '--work-dir',
        str(tmp_path / 'w'), '--data-root', str(empty_root),
        '--cfg-options', f'load_from={missing}'])
    assert lines[-1] == (
        f'error: load_from: checkpoint not found: {missing} (it is written '
        'by `bash tools/dist_train.sh configs/dmformer/'
        'dmformer_swin-t_4xb2-10e_refcoco-pretrain.py 8`; or pass '
        '--cfg-options load_from=<checkpoint>)')
    glip = str(tmp_path / 'glip-t_dmformer.pth')
    lines = _run_error([
        sys.executable, 'tools/train.py',
        'configs/dmformer/dmformer_swin-t_4xb2-10e_refcoco-pretrain.py',
        '--work-dir', str(tmp_path / 'w'), '--cfg-options',
        f'load_from={glip}'])
    assert lines[-1].startswith(
        f'error: load_from: checkpoint not found: {glip} (convert GLIP-T '
        'with `python tools/model_converters/glip_to_dmformer.py ')


def test_frozen_module_without_weights_stops_in_one_line(tmp_path, data_root):
    """A frozen text encoder without pretrained weights: one line naming it,
    no iteration, no checkpoint."""
    cfg = tmp_path / 'random_bert.py'
    cfg.write_text(
        f"_base_ = '{CFG}'\n"
        'model = dict(language_model=dict(pretrained_path=None, '
        'bert_config=dict(_delete_=True, hidden_size=64, '
        'num_hidden_layers=1, num_attention_heads=2, '
        'intermediate_size=64)))\n')
    work_dir = tmp_path / 'w'
    lines = _run_error(
        [sys.executable, 'tools/train.py', str(cfg), '--work-dir',
         str(work_dir)] + _data_args(data_root, 2))
    assert lines[-1].startswith(
        'error: frozen module `language_model` (BertTextEncoder) received no '
        'pretrained weights for ')
    assert 'glip_to_dmformer.py' in lines[-1]
    assert 'check_frozen=False' in lines[-1]
    assert not glob.glob(str(work_dir / '*.pth'))
