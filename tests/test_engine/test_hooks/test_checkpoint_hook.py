# Copyright (c) OpenMMLab. All rights reserved.
import builtins
import errno
import os
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from dmformer.engine import CheckpointHook, read_checkpoint
from dmformer.engine.hooks.checkpoint_hook import POINTER_STAGING
from dmformer.registry import HOOKS


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
        return 4

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)))


def _runner(work_dir, max_epochs=2, **checkpoint):
    return Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        default_scope='dmformer',
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1, **checkpoint)),
        randomness=dict(seed=0))


class _FullDiskFile:
    """A file whose first ``write`` stores half the bytes, then fails as
    on a full disk."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def _fill_disk_when_writing(monkeypatch, name):
    """Make every write of a file whose name contains ``name`` fail half
    way, whatever the file is called while it is written."""
    real_open = builtins.open

    def fake_open(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and name in osp.basename(
                str(file)) and ('w' in mode or 'x' in mode):
            return _FullDiskFile(f)
        return f

    monkeypatch.setattr(builtins, 'open', fake_open)


def test_registered_under_mmengine_name():
    hook = HOOKS.build(dict(type='CheckpointHook'))  # the dmformer scope
    assert isinstance(hook, CheckpointHook)
    assert isinstance(hook, MMEngineCheckpointHook)
    assert hook.backend_args == dict(backend='atomic_local')
    # another backend or a remote folder keeps MMEngine's behaviour
    assert CheckpointHook(out_dir='s3://bucket/ckpts').backend_args is None
    assert CheckpointHook(backend_args=dict(
        backend='local')).backend_args == dict(backend='local')


def test_checkpoints_and_pointer_are_renamed_into_place(
        tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((osp.basename(src), osp.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', spy)
    work_dir = tmp_path / 'work'
    _runner(work_dir).train()
    part = r'\.[0-9a-f]{8}\.part'
    for name in ('epoch_1.pth', 'last_checkpoint', 'epoch_2.pth'):
        assert any(dst == name and re.fullmatch(re.escape('.' + name) + part,
                                                src)
                   for src, dst in replaced), (name, replaced)
    assert sorted(os.listdir(work_dir))[-3:] == [
        'epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'
    ]
    assert not any(n.startswith('.') for n in os.listdir(work_dir))
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir /
                                                             'epoch_2.pth')
    assert read_checkpoint(str(work_dir / 'epoch_2.pth'))['meta']['epoch'] == 2


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(
        tmp_path, monkeypatch):
    work_dir = tmp_path / 'work'
    _fill_disk_when_writing(monkeypatch, 'epoch_2.pth')
    with pytest.raises(OSError) as err:
        _runner(work_dir).train()
    assert err.value.errno == errno.ENOSPC
    assert err.value.filename == str(work_dir / 'epoch_2.pth')
    # no truncated epoch_2.pth, no temporary file; epoch_1 complete
    assert not (work_dir / 'epoch_2.pth').exists()
    assert not any(n.startswith('.') for n in os.listdir(work_dir))
    assert read_checkpoint(str(work_dir / 'epoch_1.pth'))['meta']['epoch'] == 1
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir /
                                                             'epoch_1.pth')


def test_full_disk_during_the_pointer_keeps_the_previous_pointer(
        tmp_path, monkeypatch):
    work_dir = tmp_path / 'work'
    runner = _runner(work_dir, max_epochs=1)
    runner.train()
    _fill_disk_when_writing(monkeypatch, 'last_checkpoint')
    with pytest.raises(OSError):
        _runner(work_dir, max_epochs=2).train()
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir /
                                                             'epoch_1.pth')


def test_unfinished_writes_of_a_killed_run_are_removed(tmp_path, monkeypatch):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    part = work_dir / '.epoch_2.pth.0123abcd.part'
    part.write_bytes(b'half a checkpoint')
    (work_dir / POINTER_STAGING).mkdir()
    (work_dir / POINTER_STAGING / 'last_checkpoint').write_text('/trunc')
    runner = _runner(work_dir, max_epochs=1)
    warnings = []
    monkeypatch.setattr(runner.logger, 'warning', warnings.append)
    runner.train()
    assert not part.exists()
    assert not (work_dir / POINTER_STAGING).exists()
    assert f'removed the unfinished write of a killed run: {part}' in warnings
