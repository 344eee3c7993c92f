# Copyright (c) OpenMMLab. All rights reserved.
"""Skip the training steps whose loss is NaN or infinite.

One NaN loss back-propagated once turns every weight it reaches into NaN,
and every later checkpoint is then useless.
:func:`train_step_skipping_nonfinite` is MMEngine's training step
(pre-process, forward in ``'loss'`` mode, ``parse_losses``,
``optim_wrapper.update_params``) with a check between the loss and the
update: when the total loss or one of its terms (the
``log_vars`` whose name contains ``'loss'``) is not finite, nothing is
back-propagated, the gradients are zeroed, the weights stay as they were and
a warning names the terms; after ``max_consecutive_steps`` such steps in a
row the run stops with :class:`NonFiniteLossError`. It is used by
``DMFormer.train_step`` (one process) and by
:class:`GuardedDistributedDataParallel` (the DDP wrapper of
``configs/_base_/default_runtime.py``), where all ranks skip together.
:class:`~dmformer.engine.hooks.NonFiniteLossHook` sets the limit.

Only the loss is checked: with ``AmpOptimWrapper`` (fp16), infinite
*gradients* of a finite loss remain the loss scaler's job (it skips those
steps and lowers the scale). A skipped step still counts as an iteration
(the learning-rate schedule advances), and under gradient accumulation it
drops the gradients accumulated so far in its window.
"""
import logging
from typing import Dict, List, Optional, Union

import torch
from mmengine.dist import (all_gather_object, all_reduce, get_rank,
                           get_world_size)
from mmengine.logging import MessageHub, print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.model.utils import detect_anomalous_params
from mmengine.optim import OptimWrapper
from torch import Tensor

from dmformer.registry import MODEL_WRAPPERS

#: Attribute of the model that holds its :class:`NonFiniteLossGuard`.
GUARD_ATTR = '_nonfinite_loss_guard'
#: Default of ``max_consecutive_steps``.
DEFAULT_MAX_CONSECUTIVE_STEPS = 10
#: At most this many non-finite terms are named in a message.
_MAX_NAMED = 6


class NonFiniteLossError(RuntimeError):
    """Too many training steps in a row had a non-finite loss."""


class NonFiniteLossGuard:
    """Counts the skipped steps of a run and decides when to stop.

    Args:
        max_consecutive_steps (int): Stop at this many steps in a row with
            a non-finite loss. Defaults to 10.
    """

    def __init__(self,
                 max_consecutive_steps: int = DEFAULT_MAX_CONSECUTIVE_STEPS
                 ) -> None:
        if not isinstance(max_consecutive_steps, int) or \
                isinstance(max_consecutive_steps, bool) or \
                max_consecutive_steps < 1:
            raise ValueError('max_consecutive_steps must be a positive int, '
                             f'got {max_consecutive_steps!r}')
        self.max_consecutive_steps = max_consecutive_steps
        #: steps skipped in a row / in the whole run
        self.consecutive = 0
        self.total = 0
        self._first_iter: Optional[int] = None

    @staticmethod
    def nonfinite_terms(log_vars: Dict[str, Tensor]) -> List[str]:
        """The loss terms of this step that are not finite, on any rank.

        Every rank takes part (one ``all_reduce`` of a flag, and an
        ``all_gather_object`` of the names only when a rank has one), so
        that all ranks make the same decision.

        Args:
            log_vars (dict[str, Tensor]): ``parse_losses``' log variables;
                the total is ``'loss'``.

        Returns:
            list[str]: ``'<name>=<value>'`` of the non-finite terms (the
            total ``'loss'`` only if no term is), with `` on rank R`` for
            another rank's; empty if every loss is finite everywhere.
        """
        names = [name for name in log_vars if 'loss' in name]
        if not names:
            return []
        values = torch.stack(
            [log_vars[name].detach().float().reshape(()) for name in names])
        bad = ~torch.isfinite(values)
        flag = bad.any().to(torch.int32).reshape(1)
        all_reduce(flag, op='max')
        if not flag.item():
            return []
        local = [
            f'{name}={value:g}'
            for name, value, is_bad in zip(names, values.tolist(),
                                           bad.tolist()) if is_bad
        ]
        if len(local) > 1:  # name the terms; the total follows from them
            local = [term for term in local if not term.startswith('loss=')]
        if get_world_size() == 1:
            return local
        found = []
        for rank, terms in enumerate(all_gather_object(local)):
            found += terms if rank == get_rank() else \
                [f'{term} on rank {rank}' for term in terms]
        return found

    def passed(self) -> None:
        """Record a step whose loss was finite."""
        self.consecutive = 0
        self._first_iter = None

    def skipped(self, terms: List[str]) -> None:
        """Record a skipped step: warn, or stop the run at the limit.

        Args:
            terms (list[str]): :meth:`nonfinite_terms` of the step.

        Raises:
            NonFiniteLossError: ``max_consecutive_steps`` steps in a row
                have now been skipped.
        """
        self.consecutive += 1
        self.total += 1
        hub = MessageHub.get_current_instance()
        it = hub.get_info('iter')
        where = f'iteration {it + 1}' if it is not None else 'a step'
        if self._first_iter is None:
            self._first_iter = it
        what = ', '.join(terms[:_MAX_NAMED])
        if len(terms) > _MAX_NAMED:
            what += f' and {len(terms) - _MAX_NAMED} more'
        if self.consecutive >= self.max_consecutive_steps:
            since = '' if it is None or self._first_iter is None else \
                f' (iterations {self._first_iter + 1}-{it + 1})'
            raise NonFiniteLossError(
                f'non-finite loss in {self.consecutive} consecutive training '
                f'steps{since}, last {what}: stopped without updating the '
                'weights with them, the checkpoints written so far are '
                'intact (check the data and the learning rate; '
                'default_hooks.nonfinite_loss.max_consecutive_steps='
                f'{self.max_consecutive_steps} is the limit)')
        print_log(
            f'{where}: non-finite {what}: skipped the update ('
            f'{self.consecutive} in a row, {self.total} in this run; the run '
            f'stops at {self.max_consecutive_steps} in a row)',
            logger='current',
            level=logging.WARNING)


def get_nonfinite_loss_guard(model: torch.nn.Module) -> NonFiniteLossGuard:
    """The guard of ``model`` (created with the default limit if it has
    none)."""
    guard = model.__dict__.get(GUARD_ATTR)
    if guard is None:
        guard = NonFiniteLossGuard()
        set_nonfinite_loss_guard(model, guard)
    return guard


def set_nonfinite_loss_guard(model: torch.nn.Module,
                             guard: NonFiniteLossGuard) -> None:
    """Give ``model`` (not its DDP wrapper) the guard its training steps
    use."""
    model.__dict__[GUARD_ATTR] = guard


def train_step_skipping_nonfinite(
    model: torch.nn.Module,
    data: Union[dict, tuple, list],
    optim_wrapper: OptimWrapper,
    wrapper: Optional[MMDistributedDataParallel] = None
) -> Dict[str, Tensor]:
    """MMEngine's ``train_step`` that skips a non-finite loss.

    The steps and their order are those of ``BaseModel.train_step`` (or,
    with ``wrapper``, of ``MMDistributedDataParallel.train_step``), so a run
    without a non-finite loss computes exactly the same; in between,
    :meth:`NonFiniteLossGuard.nonfinite_terms` decides whether
    ``optim_wrapper.update_params`` runs.

    Args:
        model (nn.Module): The model (a ``BaseModel``).
        data (dict | tuple | list): The batch of the dataloader.
        optim_wrapper (OptimWrapper): Updates the parameters.
        wrapper (MMDistributedDataParallel, optional): The DDP wrapper of
            ``model``, which runs the forward pass. Defaults to None.

    Returns:
        dict[str, Tensor]: The log variables; those that are not finite are
        left out of a skipped step's.
    """
    runner_model = model if wrapper is None else wrapper
    with optim_wrapper.optim_context(runner_model):
        data = model.data_preprocessor(data, True)
        losses = runner_model._run_forward(data, mode='loss')
    parsed_loss, log_vars = model.parse_losses(losses)
    guard = get_nonfinite_loss_guard(model)
    terms = guard.nonfinite_terms(log_vars)
    if terms:
        optim_wrapper.zero_grad()
        guard.skipped(terms)
        return {
            name: value
            for name, value in log_vars.items()
            if not ('loss' in name and not torch.isfinite(value).all())
        }
    guard.passed()
    optim_wrapper.update_params(parsed_loss)
    if wrapper is not None and wrapper.detect_anomalous_params:
        detect_anomalous_params(parsed_loss, model=wrapper)
    return log_vars


@MODEL_WRAPPERS.register_module()
class GuardedDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` whose ``train_step`` skips the steps
    with a non-finite loss on every rank together (see
    :func:`train_step_skipping_nonfinite`).

    ``MMDistributedDataParallel.train_step`` runs the steps of the wrapped
    model itself, not the model's ``train_step``, so the check needs this
    wrapper under DDP. A rank that skipped alone would leave the others
    waiting forever in the gradient all-reduce of their backward pass;
    here a non-finite loss on one rank skips the step on all.

    Args:
        module (nn.Module): The model.
        detect_anomalous_params (bool): See ``MMDistributedDataParallel``.
        **kwargs: ``DistributedDataParallel``'s arguments.
    """

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """One training step of the wrapped model (see
        :func:`train_step_skipping_nonfinite`)."""
        return train_step_skipping_nonfinite(
            self.module, data, optim_wrapper, wrapper=self)
