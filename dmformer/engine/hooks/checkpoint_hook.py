# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp
import shutil
from pathlib import Path
from typing import Optional, Union

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from dmformer.registry import HOOKS
from ..atomic_io import atomic_write, remove_unfinished_writes

#: Name of the pointer file MMEngine writes next to the checkpoints.
POINTER_NAME = 'last_checkpoint'
#: Folder of the work dir in which the pointer is written before it is
#: moved in place.
POINTER_STAGING = '.last_checkpoint.staging'


class _RunnerInOtherWorkDir:
    """A view of ``runner`` whose ``work_dir`` is ``work_dir``; every other
    attribute (``save_checkpoint``, ``message_hub``, ...) is the runner's."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name: str):
        return getattr(self._runner, name)


@HOOKS.register_module(name='CheckpointHook')
class CheckpointHook(MMEngineCheckpointHook):
    """MMEngine's ``CheckpointHook`` that never leaves a truncated file.

    Registered under MMEngine's name in the ``dmformer`` scope, so that
    every config's ``default_hooks.checkpoint=dict(type='CheckpointHook',
    ...)`` gets it. Its arguments and behaviour are those of
    :class:`mmengine.hooks.CheckpointHook`, except that on a local folder

    * the checkpoints are written by the ``'atomic_local'`` file backend
      (:class:`~dmformer.engine.atomic_io.AtomicLocalBackend`): to a hidden
      temporary file renamed to ``epoch_N.pth`` / ``iter_N.pth`` only once
      complete, so a run killed, or a disk filling up, during the write
      leaves the previous checkpoints and no partial ``.pth``;
    * the ``last_checkpoint`` pointer in the work dir is replaced
      atomically in the same way;
    * before training, the temporary files of a run killed during a write
      are deleted (one log line each).

    ``backend_args`` (or the deprecated ``file_client_args``) given in the
    config, or an ``out_dir`` with a URI prefix (e.g. ``s3://``), keep
    MMEngine's behaviour for that backend.

    Args:
        *args: MMEngine's positional arguments (``interval``, ...).
        out_dir (str | Path, optional): See MMEngine's hook. Defaults to
            None (the work dir).
        file_client_args (dict, optional): See MMEngine's hook (deprecated
            there). Defaults to None.
        backend_args (dict, optional): See MMEngine's hook. Defaults to
            None: ``dict(backend='atomic_local')`` for a local ``out_dir``.
        **kwargs: MMEngine's other keyword arguments.
    """

    def __init__(self,
                 *args,
                 out_dir: Optional[Union[str, Path]] = None,
                 file_client_args: Optional[dict] = None,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        local = out_dir is None or '://' not in str(out_dir)
        if backend_args is None and file_client_args is None and local:
            backend_args = dict(backend='atomic_local')
        super().__init__(
            *args,
            out_dir=out_dir,
            file_client_args=file_client_args,
            backend_args=backend_args,
            **kwargs)

    @property
    def _atomic(self) -> bool:
        return (self.backend_args or {}).get('backend') == 'atomic_local'

    def before_train(self, runner) -> None:
        """Set up the output folder (see MMEngine's hook) and delete the
        unfinished writes of a killed run from it."""
        super().before_train(runner)
        if not self._atomic or not is_main_process():
            return
        folders = {osp.abspath(self.out_dir), osp.abspath(runner.work_dir)}
        staging = osp.join(runner.work_dir, POINTER_STAGING)
        for folder in sorted(folders):
            for path in remove_unfinished_writes(folder):
                runner.logger.warning(
                    f'removed the unfinished write of a killed run: {path}')
        # at most a partial pointer of a killed run is left in it
        shutil.rmtree(staging, ignore_errors=True)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save the checkpoint of ``step`` as MMEngine does, then point
        ``last_checkpoint`` at it atomically.

        MMEngine writes the pointer with a plain ``open(..., 'w')`` into
        ``runner.work_dir``; here it writes it into a staging folder of the
        work dir, from which it is moved over the old pointer with
        :func:`~dmformer.engine.atomic_io.atomic_write`.
        """
        if not self._atomic or not is_main_process():
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        staging = osp.join(runner.work_dir, POINTER_STAGING)
        os.makedirs(staging, exist_ok=True)
        try:
            super()._save_checkpoint_with_step(
                _RunnerInOtherWorkDir(runner, staging), step, meta)
            with open(osp.join(staging, POINTER_NAME)) as f:
                pointer = f.read()
            atomic_write(pointer, osp.join(runner.work_dir, POINTER_NAME))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
