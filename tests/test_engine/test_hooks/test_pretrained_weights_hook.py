# Copyright (c) OpenMMLab. All rights reserved.
"""PretrainedWeightsHook in a real MMEngine Runner on a toy model: frozen
modules without weights stop training, ``drop_keys`` only acts when a new
training run loads ``load_from``."""
import copy
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModel, BaseModule
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from dmformer.registry import MODELS


class _Backbone(BaseModule):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.fc = nn.Linear(2, 2)
        self.fc.requires_grad_(False)


@MODELS.register_module(force=True)
class _ToyFrozenModel(BaseModel):

    def __init__(self, backbone_init_cfg=None):
        super().__init__()
        self.backbone = _Backbone(init_cfg=backbone_init_cfg)
        self.head = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs)
        out = self.head(self.backbone.fc(inputs))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class _Toy(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)))


def _state_dict(seed):
    torch.manual_seed(seed)
    return _ToyFrozenModel().state_dict()


def _runner(tmp_path, load_from=None, hook=None, resume=False, lr=0.1,
            backbone_init_cfg=None):
    return Runner(
        model=dict(type='_ToyFrozenModel',
                   backbone_init_cfg=backbone_init_cfg),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_Toy(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False),
            pretrained_weights=hook or dict(type='PretrainedWeightsHook')),
        load_from=load_from,
        resume=resume,
        default_scope='dmformer',
        experiment_name=f'toy_{tmp_path.name}_{id(hook)}_{resume}')


def test_frozen_module_without_weights_stops_training(tmp_path):
    runner = _runner(tmp_path)
    with pytest.raises(ValueError) as info:
        runner.train()
    message = str(info.value)
    assert 'frozen module `backbone` (_Backbone)' in message
    assert '2 of its 2 frozen parameters' in message
    assert 'glip_to_dmformer.py' in message  # the command making weights
    assert 'check_frozen=False' in message
    assert '\n' not in message
    assert runner.iter == 0  # no iteration ran


def test_check_frozen_false_trains(tmp_path):
    runner = _runner(
        tmp_path,
        hook=dict(type='PretrainedWeightsHook', check_frozen=False))
    runner.train()
    assert runner.iter == 1


def test_load_from_covering_the_frozen_module_trains(tmp_path):
    ckpt = str(tmp_path / 'pre.pth')
    state = _state_dict(1)
    # a partial checkpoint, as the GLIP-T converter writes
    torch.save({'state_dict': {
        k: v for k, v in state.items() if k.startswith('backbone.')}}, ckpt)
    runner = _runner(tmp_path, load_from=ckpt)
    runner.train()
    assert torch.equal(runner.model.backbone.fc.weight,
                       state['backbone.fc.weight'])


def test_partial_coverage_is_refused(tmp_path):
    ckpt = str(tmp_path / 'pre.pth')
    torch.save({'state_dict': {
        'backbone.fc.weight': torch.zeros(2, 2)}}, ckpt)
    with pytest.raises(ValueError, match=r'1 of its 2 frozen parameters '
                       r'\(e\.g\. backbone\.fc\.bias'):
        _runner(tmp_path, load_from=ckpt).train()


def test_pretrained_init_cfg_covers_the_module(tmp_path):
    ckpt = str(tmp_path / 'backbone.pth')
    weights = _Backbone().state_dict()
    torch.save(weights, ckpt)
    runner = _runner(
        tmp_path,
        backbone_init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    runner.train()
    assert torch.equal(runner.model.backbone.fc.weight, weights['fc.weight'])


def test_drop_keys_on_a_new_run_only(tmp_path):
    ckpt = str(tmp_path / 'pre.pth')
    state = _state_dict(1)
    torch.save({'state_dict': state}, ckpt)
    hook = dict(type='PretrainedWeightsHook', drop_keys=[r'head\.'])
    # lr 0: the parameters after one step are those loaded
    runner = _runner(tmp_path / 'ft', load_from=ckpt, hook=hook, lr=0.)
    init_head = copy.deepcopy(runner.model.head.state_dict())
    runner.train()
    assert torch.equal(runner.model.backbone.fc.weight,
                       state['backbone.fc.weight'])
    assert torch.equal(runner.model.head.weight, init_head['weight'])
    assert not torch.equal(runner.model.head.weight, state['head.weight'])

    # resuming the fine-tuning loads its own checkpoint whole
    resumed = _runner(tmp_path / 'ft', hook=hook, resume=True, lr=0.)
    with torch.no_grad():
        resumed.model.head.weight.fill_(7.)
    resumed._train_loop = resumed.build_train_loop(resumed._train_loop)
    resumed.load_or_resume()
    assert torch.equal(resumed.model.head.weight, init_head['weight'])

    # tools/test.py's loading (no train loop built) is whole too
    tester = _runner(tmp_path / 'test', load_from=ckpt, hook=hook)
    tester.load_or_resume()
    assert torch.equal(tester.model.head.weight, state['head.weight'])


def test_drop_keys_log_says_how_many(tmp_path):
    ckpt = str(tmp_path / 'pre.pth')
    torch.save({'state_dict': _state_dict(1)}, ckpt)
    runner = _runner(
        tmp_path,
        load_from=ckpt,
        hook=dict(type='PretrainedWeightsHook', drop_keys=[r'head\.']))
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        runner.train()
    finally:
        logger.removeHandler(handler)
    assert any('2 keys of the load_from checkpoint not loaded' in m
               for m in messages)
