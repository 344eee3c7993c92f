# Copyright (c) OpenMMLab. All rights reserved.
import datetime
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from dmformer.engine import dist_failure
from dmformer.engine.dist_failure import (ROLL_CALL_PREFIX, describe_failure,
                                          dist_timeout, init_cpu_process_group,
                                          is_collective_failure,
                                          unanswered_ranks)


def test_default_runtime_timeout():
    cfg = Config.fromfile('configs/dmformer/dmformer_tiny_synthetic.py')
    assert dist_timeout(cfg) == 900
    assert dist_timeout(Config(dict(env_cfg=dict(dist_cfg={})))) is None
    for bad in (0, -5, '60', True):
        with pytest.raises(ValueError, match='positive number of seconds'):
            dist_timeout(Config(dict(env_cfg=dict(dist_cfg=dict(
                timeout=bad)))))


def test_cpu_process_group_gets_the_timeout(monkeypatch):
    calls = []
    monkeypatch.setattr(dist, 'init_process_group',
                        lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(
        dict(
            launcher='pytorch',
            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=42))))
    init_cpu_process_group(cfg)
    assert calls == [
        dict(backend='gloo', timeout=datetime.timedelta(seconds=42))
    ]
    # nothing to do without the pytorch launcher, or with CUDA (MMEngine's
    # init_dist passes the timeout then)
    init_cpu_process_group(Config(dict(cfg, launcher='none')))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    init_cpu_process_group(cfg)
    assert len(calls) == 1


def test_not_a_collective_failure_without_a_process_group():
    assert not is_collective_failure(RuntimeError('gloo: Timed out'))


@pytest.fixture
def store_of_three_ranks(monkeypatch):
    """A rendezvous store and a fake process group of 3 ranks, this
    process being rank 0."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    store = dist.TCPStore(
        '127.0.0.1', port, is_master=True, wait_for_workers=False)
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(port))
    monkeypatch.setenv('TORCHELASTIC_RUN_ID', 'test')
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_rank', lambda group=None: 0)
    monkeypatch.setattr(dist, 'get_world_size', lambda group=None: 3)
    return store


def test_roll_call_names_the_ranks_that_do_not_answer(store_of_three_ranks):
    # rank 2 survived too and checked in; rank 1 is dead
    store_of_three_ranks.set(f'{ROLL_CALL_PREFIX}/test/0/2', '1')
    assert unanswered_ranks(wait_s=1) == [1]
    assert is_collective_failure(RuntimeError(
        '[../gloo/transport/tcp/pair.cc:537] Read error: Connection reset'))
    assert not is_collective_failure(RuntimeError('a bug'))
    line = describe_failure(
        RuntimeError('[/src/gloo/transport/tcp/unbound_buffer.cc:78] Timed '
                     'out waiting 20000ms for recv operation to complete'
                     '\nmore'),
        timeout=20,
        wait_s=1)
    assert line == (
        'rank 0: a collective operation failed, rank 1 did not answer '
        'within 1 s (dead or hung; see its log); process-group timeout '
        'env_cfg.dist_cfg.timeout: 20 s (RuntimeError: Timed out waiting '
        '20000ms for recv operation to complete)')
    store_of_three_ranks.set(f'{ROLL_CALL_PREFIX}/test/0/1', '1')
    assert 'every rank answered' in describe_failure(
        RuntimeError('gloo'), timeout=None, wait_s=1)


def test_roll_call_without_a_store(monkeypatch):
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_rank', lambda group=None: 0)
    monkeypatch.setattr(dist, 'get_world_size', lambda group=None: 2)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(port))
    assert unanswered_ranks(wait_s=1) is None
    assert 'the other ranks could not be asked' in describe_failure(
        RuntimeError('gloo'), timeout=5, wait_s=1)
    monkeypatch.delenv('MASTER_ADDR')
    assert dist_failure.unanswered_ranks(wait_s=1) is None
