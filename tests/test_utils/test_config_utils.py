# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import pytest
from mmengine.config import Config

from dmformer.utils import reroot_data

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONTEXT_ONLY = osp.join(
    ROOT, 'configs/dmformer/'
    'dmformer_tiny_synthetic_attr-pretrained_context-only.py')
LABELS = 'meta_expressions/valid/'


def test_reroot_test_split_moves_the_evaluator_files(tmp_path):
    cfg = Config.fromfile(CONTEXT_ONLY)
    new = str(tmp_path / 'other')
    (tmp_path / 'other').mkdir()
    assert reroot_data(cfg, new, phases=('test', )) is cfg
    assert cfg.test_dataloader.dataset.data_root == new + '/'
    evaluator = cfg.test_evaluator
    assert evaluator.meta_file == f'{new}/{LABELS}meta_expressions.json'
    assert evaluator.swap_pairs_file == f'{new}/{LABELS}swap_pairs.json'
    # the context-only model chooses no subject: nothing to move
    assert evaluator.subject_label_file is None
    # files elsewhere, the other phases and relative paths stay
    assert evaluator.outfile_prefix == 'work_dirs/synthetic_rvos_submission'
    assert cfg.test_dataloader.dataset.ann_file == \
        f'{LABELS}meta_expressions.json'
    assert cfg.val_dataloader.dataset.data_root == 'data/synthetic-rvos/'
    assert cfg.val_evaluator.swap_pairs_file == \
        f'data/synthetic-rvos/{LABELS}swap_pairs.json'


def test_reroot_all_phases(tmp_path):
    cfg = Config.fromfile(CONTEXT_ONLY)
    cfg.test_evaluator = [cfg.test_evaluator, dict(type='Other', f='x')]
    reroot_data(cfg, str(tmp_path) + '/')
    root = str(tmp_path) + '/'
    for phase in ('train', 'val', 'test'):
        assert cfg[f'{phase}_dataloader'].dataset.data_root == root
    assert cfg.val_evaluator.swap_pairs_file == \
        f'{root}{LABELS}swap_pairs.json'
    assert cfg.test_evaluator[0]['swap_pairs_file'] == \
        f'{root}{LABELS}swap_pairs.json'
    assert cfg.test_evaluator[1] == dict(type='Other', f='x')


def test_reroot_bad_input(tmp_path):
    cfg = Config.fromfile(CONTEXT_ONLY)
    with pytest.raises(FileNotFoundError, match='not a folder') as error:
        reroot_data(cfg, str(tmp_path / 'missing'))
    assert error.value.filename == str(tmp_path / 'missing')
    cfg.test_dataloader.dataset.pop('data_root')
    with pytest.raises(ValueError, match='test_dataloader.dataset has no'):
        reroot_data(cfg, str(tmp_path), phases=('test', ))
    cfg = Config(dict(model=dict()))
    with pytest.raises(ValueError, match='no test dataloader'):
        reroot_data(cfg, str(tmp_path), phases=('test', ))
