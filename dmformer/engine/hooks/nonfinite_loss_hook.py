# Copyright (c) OpenMMLab. All rights reserved.
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from dmformer.registry import HOOKS
from ..nonfinite_loss import (DEFAULT_MAX_CONSECUTIVE_STEPS,
                              NonFiniteLossGuard, set_nonfinite_loss_guard)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Set how many training steps in a row may have a non-finite loss.

    The steps themselves are skipped by the model's training step (see
    :mod:`dmformer.engine.nonfinite_loss`); this hook gives the model a
    fresh :class:`~dmformer.engine.nonfinite_loss.NonFiniteLossGuard` with
    the limit when training starts. ``configs/_base_/default_runtime.py``
    has it as ``default_hooks.nonfinite_loss``.

    Args:
        max_consecutive_steps (int): Stop the run with one error line when
            this many steps in a row had a NaN or infinite loss (each of
            them skipped). Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 max_consecutive_steps: int = DEFAULT_MAX_CONSECUTIVE_STEPS
                 ) -> None:
        # validated now, so that a bad value fails when the hook is built
        self.guard = NonFiniteLossGuard(max_consecutive_steps)

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        self.guard = NonFiniteLossGuard(self.guard.max_consecutive_steps)
        set_nonfinite_loss_guard(model, self.guard)
