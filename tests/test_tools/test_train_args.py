# Copyright (c) OpenMMLab. All rights reserved.
import argparse

import pytest
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
    (work_dir / 'epoch_2.pth').write_bytes(b'')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    cfg = train.merge_args(
        Config.fromfile(PAPER_CFG),
        _args(PAPER_CFG, resume='auto', work_dir=str(work_dir)))
    assert cfg.resume and cfg.load_from is None
