# Copyright (c) OpenMMLab. All rights reserved.
import datetime
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
