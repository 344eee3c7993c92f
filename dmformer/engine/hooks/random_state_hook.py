# Copyright (c) OpenMMLab. All rights reserved.
import logging
import random
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from dmformer.registry import HOOKS


def get_random_states() -> Dict:
    """Random states of python, numpy and torch (CPU and every CUDA device).

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and, with CUDA, ``cuda`` (a
        list with one state per device).
    """
    states = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: Dict) -> None:
    """Restore states returned by :func:`get_random_states`."""
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    cuda_states = states.get('cuda')
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) != torch.cuda.device_count():
            print_log(
                f'RandomStateHook: the checkpoint has CUDA random states of '
                f'{len(cuda_states)} devices, this machine has '
                f'{torch.cuda.device_count()}; CUDA states not restored',
                logger='current',
                level=logging.WARNING)
        else:
            torch.cuda.set_rng_state_all(cuda_states)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random states in every checkpoint and restore them on resume.

    MMEngine restores the model, optimizer, schedulers and the position in
    the data (an iteration-based loop re-reads the batches it already
    trained on), but it seeds the random generators anew: after
    ``--resume`` the dropout / drop-path masks, and any other draw made in
    the training process, differ from the uninterrupted run. With this hook
    the states of python's ``random``, numpy and torch (CPU and CUDA) at the
    moment a checkpoint is written are stored in it (key
    ``random_states``) and set again just before training continues, so the
    resumed run repeats the uninterrupted one step for step.

    Exactness also needs the data to be drawn in worker processes
    (``num_workers >= 1``): their generators are seeded from the config's
    seed and re-run while the loop skips the trained batches. With
    ``num_workers=0`` the augmentation draws of the skipped batches happen
    in the main process and are then overwritten by the restored states, so
    later batches are augmented differently (a warning says so).
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._pending: Optional[Dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_states'] = get_random_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # called by ``runner.resume`` (not by ``load_from``)
        self._pending = checkpoint.get('random_states')
        if self._pending is None:
            print_log(
                'RandomStateHook: the checkpoint has no random states '
                '(written without this hook); the resumed run draws '
                'different random numbers from the uninterrupted one',
                logger='current',
                level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        # after the data iterators are built and before an iteration-based
        # loop skips the trained batches (which, in worker processes, does
        # not draw in this process)
        if self._pending is None:
            return
        if getattr(runner.train_dataloader, 'num_workers', 1) == 0:
            print_log(
                'RandomStateHook: num_workers=0, the data augmentation after '
                'the resume differs from the uninterrupted run',
                logger='current',
                level=logging.WARNING)
        set_random_states(self._pending)
        self._pending = None
