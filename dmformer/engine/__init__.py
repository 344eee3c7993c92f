# Copyright (c) OpenMMLab. All rights reserved.
from .atomic_io import AtomicLocalBackend, atomic_write
from .checkpoint_compat import (load_legacy_checkpoint, read_checkpoint,
                                setup_safe_checkpoint_loading)
from .hooks import (CheckpointHook, NonFiniteLossHook, PretrainedWeightsHook,
                    RandomStateHook, RVOSVisualizationHook, get_random_states,
                    set_random_states)
from .nonfinite_loss import (GuardedDistributedDataParallel,
                             NonFiniteLossError, NonFiniteLossGuard,
                             train_step_skipping_nonfinite)
from .resume import find_resumable_checkpoint

# Importing dmformer.engine (done by the Runner through the registry
# ``locations`` of scope 'dmformer') makes checkpoints resumable under
# torch>=2.6's weights_only loading; see checkpoint_compat.py.
setup_safe_checkpoint_loading()

__all__ = [
    'setup_safe_checkpoint_loading', 'load_legacy_checkpoint',
    'read_checkpoint', 'PretrainedWeightsHook', 'RandomStateHook',
    'RVOSVisualizationHook', 'get_random_states', 'set_random_states',
    'AtomicLocalBackend', 'atomic_write', 'CheckpointHook',
    'NonFiniteLossHook', 'GuardedDistributedDataParallel',
    'NonFiniteLossError', 'NonFiniteLossGuard',
    'train_step_skipping_nonfinite', 'find_resumable_checkpoint'
]
