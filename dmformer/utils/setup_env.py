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
    """Switch a distributed config from NCCL to gloo when CUDA is absent.

    NCCL needs CUDA; with gloo the same launch commands (``torchrun``, the
    ``dist_*.sh`` scripts) also run multi-process training on CPU.

    Args:
        cfg (:obj:`mmengine.Config`): The config, with ``launcher`` set.
    """
    import torch
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', None)
    if (cfg.get('launcher', 'none') != 'none' and dist_cfg is not None
            and dist_cfg.get('backend') == 'nccl'
            and not torch.cuda.is_available()):
        print('CUDA is not available: using the gloo backend.')
        dist_cfg['backend'] = 'gloo'
