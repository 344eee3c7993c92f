# Copyright (c) OpenMMLab. All rights reserved.
import argparse
import os

import pytest
import torch
from mmengine.config import Config

from dmformer.testing import load_script

train = load_script('tools/train.py')
PAPER_CFG = 'configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'
TINY_CFG = 'configs/dmformer/dmformer_tiny_synthetic.py'


def _args(config, **kwargs):
    args = dict(config=config, work_dir=None, amp=False, auto_scale_lr=False,
                resume=None, no_validate=False, cfg_options=None,
                data_root=None,
                launcher='none')
    args.update(kwargs)
    return argparse.Namespace(**args)


def test_config_names_give_the_batch_the_lr_is_for():
    """``4xb1`` in the name: 4 GPUs x 1 clip, the base batch of the
    learning-rate scaling; ``--auto-scale-lr`` switches the scaling on."""
    cfg = train.merge_args(Config.fromfile(PAPER_CFG), _args(PAPER_CFG))
    assert cfg.auto_scale_lr.base_batch_size == 4 * 1
    assert not cfg.auto_scale_lr.enable
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.train_cfg.max_epochs == 6
    cfg = train.merge_args(
        Config.fromfile(PAPER_CFG), _args(PAPER_CFG, auto_scale_lr=True))
    assert cfg.auto_scale_lr.enable
    pretrain = 'configs/dmformer/dmformer_swin-t_4xb2-10e_refcoco-pretrain.py'
    cfg = Config.fromfile(pretrain)
    assert cfg.auto_scale_lr.base_batch_size == 4 * 2
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.max_epochs == 10


def test_auto_scale_lr_needs_a_base_batch():
    with pytest.raises(ValueError, match='base_batch_size'):
        train.merge_args(
            Config.fromfile(TINY_CFG), _args(TINY_CFG, auto_scale_lr=True))


def test_resume_auto_on_a_first_start_loads_load_from(tmp_path):
    """``--resume`` restarts a stage after an interruption: with no
    checkpoint in the work dir yet it must still load the previous stage's
    weights (``load_from``), not start from random ones."""
    work_dir = tmp_path / 'work'
    cfg = train.merge_args(
        Config.fromfile(PAPER_CFG),
        _args(PAPER_CFG, resume='auto', work_dir=str(work_dir)))
    assert not cfg.resume
    assert cfg.load_from.endswith(
        'dmformer_swin-t_4xb2-10e_refcoco-pretrain/epoch_10.pth')

    work_dir.mkdir()
    checkpoint = str(work_dir / 'epoch_2.pth')
    torch.save(dict(meta=dict(epoch=2), state_dict={}), checkpoint)
    (work_dir / 'last_checkpoint').write_text(checkpoint)
    cfg = train.merge_args(
        Config.fromfile(PAPER_CFG),
        _args(PAPER_CFG, resume='auto', work_dir=str(work_dir)))
    assert cfg.resume and cfg.load_from == checkpoint


def test_resume_auto_skips_checkpoints_that_do_not_load(tmp_path, capsys):
    """A truncated newest checkpoint (e.g. a run killed while writing it
    before the writes were atomic) is skipped with one line; with none that
    loads, ``load_from`` is loaded as on a first start."""
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    good = str(work_dir / 'epoch_2.pth')
    torch.save(dict(meta=dict(epoch=2), state_dict={}), good)
    (work_dir / 'epoch_3.pth').write_bytes(b'')
    cfg = train.merge_args(
        Config.fromfile(PAPER_CFG),
        _args(PAPER_CFG, resume='auto', work_dir=str(work_dir)))
    assert cfg.resume and cfg.load_from == good
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f'--resume: skipped {work_dir}/epoch_3.pth: not '
                             'a readable checkpoint, truncated or corrupt')
    assert out[1] == f'--resume: from {good}'

    os.remove(good)
    cfg = train.merge_args(
        Config.fromfile(PAPER_CFG),
        _args(PAPER_CFG, resume='auto', work_dir=str(work_dir)))
    assert not cfg.resume
    assert cfg.load_from.endswith(
        'dmformer_swin-t_4xb2-10e_refcoco-pretrain/epoch_10.pth')
    assert capsys.readouterr().out.splitlines()[-1] == (
        f'--resume: {work_dir} has no checkpoint that loads; starting from '
        f'load_from={cfg.load_from}')


def test_bad_process_group_timeout_is_one_line():
    with pytest.raises(ValueError, match='env_cfg.dist_cfg.timeout must be '
                       'a positive number of seconds'):
        train.merge_args(
            Config.fromfile(TINY_CFG),
            _args(TINY_CFG, cfg_options={'env_cfg.dist_cfg.timeout': '60'}))
