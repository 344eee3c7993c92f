# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint_hook import CheckpointHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .pretrained_weights_hook import PretrainedWeightsHook
from .random_state_hook import (RandomStateHook, get_random_states,
                                set_random_states)
from .visualization_hook import RVOSVisualizationHook

__all__ = [
    'CheckpointHook', 'NonFiniteLossHook', 'PretrainedWeightsHook',
    'RandomStateHook', 'RVOSVisualizationHook', 'get_random_states',
    'set_random_states'
]
