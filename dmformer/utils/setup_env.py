# Copyright (c) OpenMMLab. All rights reserved.
import ctypes
import datetime
import os
import sys
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all modules in dmformer into the registries.

    Importing the sub-packages registers their classes; MMEngine otherwise
    imports them lazily through the ``locations`` of
    :mod:`dmformer.registry` the first time a node is queried.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``'dmformer'``, so that a config without ``default_scope`` still
            resolves names in dmformer first. Defaults to True.
    """
    import dmformer.datasets  # noqa: F401,F403
    import dmformer.engine  # noqa: F401,F403
    import dmformer.evaluation  # noqa: F401,F403
    import dmformer.models  # noqa: F401,F403
    import dmformer.visualization  # noqa: F401,F403

    if init_default_scope:
        never_created = DefaultScope.get_current_instance() is None \
                        or not DefaultScope.check_instance_created('dmformer')
        if never_created:
            DefaultScope.get_instance('dmformer', scope_name='dmformer')
            return
        current_scope = DefaultScope.get_current_instance()
        if current_scope.scope_name != 'dmformer':
            warnings.warn('The current default scope '
                          f'"{current_scope.scope_name}" is not "dmformer", '
                          '`register_all_modules` will force the current '
                          'default scope to be "dmformer". If this is not '
                          'expected, please set `init_default_scope=False`.')
            # avoid name conflict
            new_instance_name = f'dmformer-{datetime.datetime.now()}'
            DefaultScope.get_instance(new_instance_name, scope_name='dmformer')


def use_gloo_without_cuda(cfg) -> None:
    """Make distributed configs run on CPU-only machines.

    NCCL needs CUDA, and MMEngine 0.10.7's ``init_dist`` calls
    ``torch.cuda.set_device`` for the ``pytorch`` launcher. Without CUDA this
    switches the backend to gloo and, for the ``pytorch`` launcher
    (``torchrun`` / the ``dist_*.sh`` scripts), initialises the gloo process
    group from torchrun's environment itself, so the Runner finds it ready,
    and builds the DDP wrapper without GPU ``device_ids``.

    Args:
        cfg (:obj:`mmengine.Config`): The config, with ``launcher`` set.
    """
    import torch
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print('CUDA is not available: using the gloo backend.')
        dist_cfg['backend'] = 'gloo'
    if launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=dist_cfg['backend'])
    # MMEngine pins DDP to device LOCAL_RANK (a GPU); CPU modules need None
    wrapper = cfg.get('model_wrapper_cfg', None) or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


# mallopt() parameters of glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def tune_glibc_malloc(mmap_threshold: int = 32 << 20,
                      trim_threshold: int = 1 << 30,
                      top_pad: int = 256 << 20) -> bool:
    """Keep freed tensor memory in the process instead of unmapping it.

    On CPU, PyTorch allocates every intermediate tensor with ``malloc``.
    glibc serves blocks above its (adaptive, at first 128 KiB) mmap
    threshold with fresh ``mmap`` pages and gives them back on ``free``,
    so a training step that creates hundreds of multi-MiB activations pays
    a page fault and a zero-fill for each of their pages, every step. With
    the thresholds raised, freed blocks stay on the heap and are reused
    (the measured effect is in docs/en/advanced_guides/speed_memory.md).
    The price is a higher resident size: up to ``trim_threshold`` of freed
    memory is kept.

    Only glibc (Linux) has ``mallopt``; elsewhere, or with the environment
    variable ``DMFORMER_MALLOPT=0``, nothing is changed. Call it once at
    start-up, before the large allocations (the tools do).

    Args:
        mmap_threshold (int): Blocks of at least this size are mmapped
            (glibc caps it at 32 MiB on 64-bit). Defaults to 32 MiB.
        trim_threshold (int): Free memory at the top of the heap above
            which glibc returns it to the OS. Defaults to 1 GiB.
        top_pad (int): Extra memory requested with each heap growth.
            Defaults to 256 MiB.

    Returns:
        bool: Whether the settings were applied.
    """
    if os.environ.get('DMFORMER_MALLOPT', '1') == '0' or \
            not sys.platform.startswith('linux'):
        return False
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = ((_M_MMAP_THRESHOLD, mmap_threshold),
                (_M_TRIM_THRESHOLD, trim_threshold), (_M_TOP_PAD, top_pad))
    # mallopt returns 1 on success
    return all([mallopt(param, value) == 1 for param, value in settings])
