# Copyright (c) OpenMMLab. All rights reserved.
from .random_state_hook import (RandomStateHook, get_random_states,
                                set_random_states)

__all__ = ['RandomStateHook', 'get_random_states', 'set_random_states']
