# Copyright (c) OpenMMLab. All rights reserved.
"""End a distributed run in bounded time when one of its ranks dies.

A rank that dies or hangs leaves the others blocked in their next
collective operation (the gradient all-reduce of DDP, a barrier, the
broadcast of the validation metrics) until the process group's timeout,
``env_cfg.dist_cfg.timeout`` (seconds; MMEngine's ``init_dist`` passes it
to ``torch.distributed.init_process_group``). Then the collective raises
(gloo; NCCL's watchdog aborts the process), and :func:`describe_failure`
turns the error into one line that says which ranks stopped answering: the
surviving ranks check in through the rendezvous store of ``MASTER_ADDR`` /
``MASTER_PORT`` and name those that do not.
"""
import datetime
import os
import re
import time
from typing import List, Optional

import torch
import torch.distributed as dist

#: Where the survivors of a failure check in (a key per rank).
ROLL_CALL_PREFIX = 'dmformer/roll_call'
#: At most this long the survivors wait for each other to check in.
ROLL_CALL_WAIT_S = 30.
_SOURCE_LOCATION = re.compile(r'^\[[^\]]*\.(?:cc|cpp|h):\d+\]\s*')


def dist_timeout(cfg) -> Optional[float]:
    """The process-group timeout of a config, in seconds.

    Args:
        cfg (:obj:`mmengine.Config`): The config.

    Returns:
        float | None: ``env_cfg.dist_cfg.timeout``; None if unset.

    Raises:
        ValueError: The timeout is not a positive number.
    """
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not timeout > 0:
        raise ValueError('env_cfg.dist_cfg.timeout must be a positive number '
                         f'of seconds, got {timeout!r}')
    return float(timeout)


def init_cpu_process_group(cfg) -> None:
    """Initialise the gloo process group of a CPU-only ``pytorch`` launch
    with the config's timeout.

    :func:`dmformer.utils.use_gloo_without_cuda` initialises this group
    itself when CUDA is missing, without a timeout (so with torch's default
    of 30 minutes); called before it, this creates the group with
    ``env_cfg.dist_cfg.timeout`` and the other finds it ready. With CUDA,
    or another launcher, MMEngine's ``init_dist`` passes the timeout.

    Args:
        cfg (:obj:`mmengine.Config`): The config, with ``launcher`` set.
    """
    timeout = dist_timeout(cfg)
    if cfg.get('launcher', 'none') != 'pytorch' or timeout is None \
            or torch.cuda.is_available() or dist.is_initialized():
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    dist.init_process_group(
        backend='gloo' if backend in (None, 'nccl') else backend,
        timeout=datetime.timedelta(seconds=timeout))


def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed collective operation of a distributed
    run (a peer that died, hung or became unreachable), not a bug.

    Args:
        error (BaseException): An error raised during training.

    Returns:
        bool: True for torch's distributed errors and gloo's transport and
        timeout errors raised while a process group with several ranks is
        initialised.
    """
    if not (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1):
        return False
    if isinstance(error, getattr(dist, 'DistError', ())):
        return True
    return isinstance(error, RuntimeError) and 'gloo' in str(error).lower()


def unanswered_ranks(wait_s: float = ROLL_CALL_WAIT_S) -> Optional[List[int]]:
    """The ranks that do not check in within ``wait_s`` seconds.

    Every surviving rank calls this after its collective failed: it writes
    its key into the store at ``MASTER_ADDR:MASTER_PORT`` (torchrun's, or
    rank 0's) and waits for the keys of the others.

    Args:
        wait_s (float): How long to wait for the others. Defaults to 30.

    Returns:
        list[int] | None: The ranks missing at the deadline; None if the
        store cannot be reached (e.g. its host is the node that died).
    """
    addr = os.environ.get('MASTER_ADDR')
    port = os.environ.get('MASTER_PORT')
    if not addr or not port or not dist.is_initialized():
        return None
    rank, world_size = dist.get_rank(), dist.get_world_size()
    run = '{}/{}'.format(
        os.environ.get('TORCHELASTIC_RUN_ID', 'run'),
        os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))
    keys = [f'{ROLL_CALL_PREFIX}/{run}/{r}' for r in range(world_size)]
    try:
        store = dist.TCPStore(
            addr,
            int(port),
            is_master=False,
            timeout=datetime.timedelta(seconds=max(wait_s, 1.)),
            wait_for_workers=False)
        store.set(keys[rank], '1')
        deadline = time.monotonic() + wait_s
        while True:
            missing = [r for r in range(world_size) if not store.check(
                [keys[r]])]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.5)
    except (RuntimeError, OSError, ValueError):
        return None


def describe_failure(error: BaseException,
                     timeout: Optional[float],
                     wait_s: Optional[float] = None) -> str:
    """One line about a failed collective operation.

    Args:
        error (BaseException): The error of the collective.
        timeout (float, optional): The process-group timeout in seconds
            (None: torch's default).
        wait_s (float, optional): How long to wait for the other ranks to
            check in. Defaults to the smaller of 30 s and ``timeout``.

    Returns:
        str: ``rank R: a collective operation failed, rank(s) ... did not
        answer ...``, the timeout and the first line of the error.
    """
    if wait_s is None:
        wait_s = min(ROLL_CALL_WAIT_S, timeout or ROLL_CALL_WAIT_S)
    missing = unanswered_ranks(wait_s)
    if missing is None:
        who = ('the other ranks could not be asked (the rendezvous store at '
               f'{os.environ.get("MASTER_ADDR")}:'
               f'{os.environ.get("MASTER_PORT")} is gone with its node)')
    elif missing:
        ranks = ', '.join(str(r) for r in missing)
        who = (f'rank{"s" if len(missing) > 1 else ""} {ranks} did not '
               f'answer within {wait_s:g} s (dead or hung; see '
               f'{"their" if len(missing) > 1 else "its"} log)')
    else:
        who = 'every rank answered (a network failure between them?)'
    limit = f'{timeout:g} s' if timeout is not None else "torch's default"
    # the first sentence, without gloo's source location
    detail = ' '.join(str(error).strip().split('\n')[0].split())
    detail = _SOURCE_LOCATION.sub('', detail).split('. ')[0]
    return (f'rank {dist.get_rank()}: a collective operation failed, {who}; '
            f'process-group timeout env_cfg.dist_cfg.timeout: {limit} '
            f'({type(error).__name__}: {detail[:200]})')
