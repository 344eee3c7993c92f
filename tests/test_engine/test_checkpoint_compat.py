# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from dmformer.engine import setup_safe_checkpoint_loading


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class _ToyDataset(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)))


def _build_runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=_ToyModel(),
        work_dir=work_dir,
        default_scope='dmformer',
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=0),
        **kwargs)


def test_runner_save_and_resume(tmp_path):
    work_dir = str(tmp_path / 'work_dir')
    runner = _build_runner(work_dir, max_epochs=1)
    runner.train()
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    saved = torch.load(ckpt, map_location='cpu')  # weights_only default
    assert 'message_hub' in saved and 'optimizer' in saved

    resumed = _build_runner(
        str(tmp_path / 'work_dir'), max_epochs=2, resume=True)
    resumed.train()
    # training continued from epoch 1 (4 iterations) to epoch 2
    assert resumed.epoch == 2
    assert resumed.iter == 8
    # the history of the first run was restored with the message hub
    lr_history = resumed.message_hub.get_scalar('train/lr')
    assert len(lr_history.data[0]) == 8
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))


def test_load_from_checkpoint(tmp_path):
    runner = _build_runner(str(tmp_path / 'a'), max_epochs=1)
    runner.train()
    weights = runner.model.linear.weight.detach().clone()
    other = _build_runner(
        str(tmp_path / 'b'),
        max_epochs=1,
        load_from=osp.join(str(tmp_path / 'a'), 'epoch_1.pth'))
    other.load_or_resume()
    torch.testing.assert_close(other.model.linear.weight, weights)


class _Evil:

    def __reduce__(self):
        return (eval, ('1 + 1', ))


def test_arbitrary_globals_still_rejected(tmp_path):
    setup_safe_checkpoint_loading()
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    # getattr is what plain mmengine pickles need; it must stay forbidden
    torch.save({'x': getattr(_ToyModel, 'forward')}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_read_checkpoint_errors_name_the_file(tmp_path):
    from dmformer.engine import read_checkpoint
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    assert torch.equal(read_checkpoint(good)['state_dict']['w'], torch.ones(2))
    assert torch.equal(
        read_checkpoint(good, mmap=True)['state_dict']['w'], torch.ones(2))

    with pytest.raises(FileNotFoundError) as err:
        read_checkpoint(str(tmp_path / 'missing.pth'))
    assert err.value.filename == str(tmp_path / 'missing.pth')

    truncated = str(tmp_path / 'truncated.pth')
    with open(good, 'rb') as f, open(truncated, 'wb') as g:
        g.write(f.read()[:200])
    with pytest.raises(ValueError, match='truncated.pth: not a readable'):
        read_checkpoint(truncated)

    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Evil()}, evil)
    with pytest.raises(ValueError,
                       match=r'evil.pth: refused to unpickle, it needs '
                       r'(builtins\.)?eval;'):
        read_checkpoint(evil)

    not_dict = str(tmp_path / 'list.pth')
    torch.save([torch.ones(1)], not_dict)
    with pytest.raises(ValueError, match='list.pth: not a checkpoint'):
        read_checkpoint(not_dict)
