# Copyright (c) OpenMMLab. All rights reserved.
from .pretrained_weights_hook import PretrainedWeightsHook
from .random_state_hook import (RandomStateHook, get_random_states,
                                set_random_states)
from .visualization_hook import RVOSVisualizationHook

__all__ = [
    'PretrainedWeightsHook', 'RandomStateHook', 'RVOSVisualizationHook',
    'get_random_states', 'set_random_states'
]
