# Copyright (c) OpenMMLab. All rights reserved.
from .random_state_hook import (RandomStateHook, get_random_states,
                                set_random_states)
from .visualization_hook import RVOSVisualizationHook

__all__ = [
    'RandomStateHook', 'RVOSVisualizationHook', 'get_random_states',
    'set_random_states'
]
