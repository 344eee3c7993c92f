# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint_compat import (load_legacy_checkpoint, read_checkpoint,
                                setup_safe_checkpoint_loading)
from .hooks import (PretrainedWeightsHook, RandomStateHook,
                    RVOSVisualizationHook, get_random_states,
                    set_random_states)

# Importing dmformer.engine (done by the Runner through the registry
# ``locations`` of scope 'dmformer') makes checkpoints resumable under
# torch>=2.6's weights_only loading; see checkpoint_compat.py.
setup_safe_checkpoint_loading()

__all__ = [
    'setup_safe_checkpoint_loading', 'load_legacy_checkpoint',
    'read_checkpoint', 'PretrainedWeightsHook', 'RandomStateHook',
    'RVOSVisualizationHook', 'get_random_states', 'set_random_states'
]
