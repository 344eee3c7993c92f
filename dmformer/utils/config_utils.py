# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers that edit a loaded config for the command-line tools."""
import os.path as osp
from typing import Any, Sequence

from mmengine.config import Config


def reroot_data(cfg: Config,
                data_root: str,
                phases: Sequence[str] = ('train', 'val', 'test')) -> Config:
    """Point the datasets of ``cfg`` at another data root of the same
    layout, e.g. a copy elsewhere or a valid split generated with another
    seed.

    For every phase, ``{phase}_dataloader.dataset.data_root`` becomes
    ``data_root`` and every path of ``{phase}_evaluator`` (a dict or a list
    of dicts) that lies under the config's data root (meta, swap-pair and
    subject-label files) moves under ``data_root`` too, so the scores come
    from the new root's labels. Phases without a dataloader are skipped.
    The config is edited in place.

    Args:
        cfg (Config): A loaded config.
        data_root (str): The new data root (a folder).
        phases (Sequence[str]): Phases to re-root, among ``'train'``,
            ``'val'`` and ``'test'``. Defaults to all three.

    Returns:
        Config: ``cfg``.
    """
    if not osp.isdir(data_root):
        raise FileNotFoundError(2, 'the data root is not a folder',
                                data_root)
    new = data_root.rstrip('/') + '/'
    moved = False
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        old = dataset.get('data_root')
        if not old:
            raise ValueError(f'{cfg.filename}: {phase}_dataloader.dataset '
                             'has no data_root to replace')
        old = old.rstrip('/') + '/'
        dataset['data_root'] = new
        if cfg.get(f'{phase}_evaluator') is not None:
            cfg[f'{phase}_evaluator'] = _move_paths(
                cfg[f'{phase}_evaluator'], old, new)
        moved = True
    if not moved:
        raise ValueError(f'{cfg.filename}: no {"/".join(phases)} dataloader '
                         'to point at another data root')
    return cfg


def _move_paths(value: Any, old: str, new: str) -> Any:
    """``value`` with every string that starts with ``old`` starting with
    ``new`` instead (nested dicts, lists and tuples included)."""
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old):]
    if isinstance(value, dict):
        return {
            key: _move_paths(item, old, new)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_move_paths(item, old, new) for item in value)
    return value
