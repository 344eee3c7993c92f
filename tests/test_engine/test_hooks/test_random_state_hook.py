# Copyright (c) OpenMMLab. All rights reserved.
import io
import random
from types import SimpleNamespace

import numpy as np
import torch

from dmformer.engine import (RandomStateHook, get_random_states,
                             set_random_states, setup_safe_checkpoint_loading)


def _draw():
    return (random.random(), float(np.random.rand()), float(torch.rand(())))


def test_get_set_random_states_round_trip():
    states = get_random_states()
    first = _draw()
    set_random_states(states)
    assert _draw() == first


def test_hook_saves_and_restores_through_a_checkpoint_file():
    setup_safe_checkpoint_loading()
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(num_workers=1))
    hook = RandomStateHook()
    torch.manual_seed(3)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    expected = _draw()

    # the states survive torch.save / weights_only torch.load
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    torch.manual_seed(4)
    random.seed(4)
    np.random.seed(4)
    hook.after_load_checkpoint(runner, loaded)
    hook.before_train_epoch(runner)
    assert _draw() == expected
    # restored once only: later epochs keep drawing
    hook.before_train_epoch(runner)
    assert _draw() != expected


def test_hook_without_states_in_the_checkpoint_changes_nothing():
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(num_workers=1))
    hook = RandomStateHook()
    hook.after_load_checkpoint(runner, {})
    torch.manual_seed(5)
    hook.before_train_epoch(runner)
    torch.manual_seed(5)
    a = torch.rand(3)
    torch.manual_seed(5)
    hook.before_train_epoch(runner)
    assert torch.equal(torch.rand(3), a)
