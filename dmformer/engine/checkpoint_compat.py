# Copyright (c) OpenMMLab. All rights reserved.
"""Make MMEngine 0.10.7 checkpoints load with ``weights_only=True``.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, which only
unpickles tensors, containers and explicitly allow-listed classes. MMEngine
0.10.7 calls ``torch.load`` without ``weights_only`` and stores its
``MessageHub`` state (``HistoryBuffer`` objects holding numpy arrays) in every
checkpoint, so ``Runner(resume=True)`` and ``load_from`` die with
``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``.

The fix keeps the safe unpickler on and:

1. allow-lists exactly the globals an MMEngine checkpoint needs: MMEngine's
   ``HistoryBuffer`` and numpy's array/dtype/scalar reconstructors;
2. gives ``HistoryBuffer`` a ``__reduce__`` that pickles it as
   ``HistoryBuffer(log_history, count_history, max_length)``. Without it,
   Python pickles the buffer's registered statistics methods through
   ``builtins.getattr``, and allow-listing ``getattr`` would let a crafted
   file reach arbitrary attributes, i.e. switch the safety off.

Checkpoints written by plain MMEngine 0.10.7 before this fix still contain
``getattr``; :func:`load_legacy_checkpoint` converts such a file once, for
files the user explicitly trusts.
"""
import errno
import os.path as osp
import pickle
import re
import zipfile
from typing import List

import numpy as np
import torch

_PATCHED = False


def _numpy_safe_globals() -> List:
    """Numpy callables/classes needed to unpickle arrays and scalars."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    dtype_classes = {
        type(np.dtype(t))
        for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                  np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                  np.float64)
    }
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype
            ] + sorted(dtype_classes, key=lambda c: c.__name__)


def _reduce_history_buffer(self):
    # Rebuild through the public constructor; only arrays and an int are
    # pickled, never the class-level statistics-method registry.
    return (type(self), (self._log_history, self._count_history,
                         self.max_length))


def setup_safe_checkpoint_loading() -> None:
    """Allow-list MMEngine's checkpoint classes for ``weights_only`` loading.

    Idempotent. Called when :mod:`dmformer.engine` is imported, which the
    Runner does for configs with ``default_scope='dmformer'`` (registry
    ``locations``), and by :func:`dmformer.utils.register_all_modules`.
    """
    global _PATCHED
    if _PATCHED:
        return
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.__reduce__ = _reduce_history_buffer
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals([HistoryBuffer] +
                                             _numpy_safe_globals())
    _PATCHED = True


def read_checkpoint(path: str, map_location: str = 'cpu',
                    mmap: bool = False) -> dict:
    """Read a local checkpoint with ``torch.load(weights_only=True)``.

    A missing file, a truncated or corrupt file, or one that pickles other
    objects than weights and MMEngine's allow-listed training state (see
    :func:`setup_safe_checkpoint_loading`) fails with one clear error
    naming the file, instead of a stack trace from deep inside the loader.

    Args:
        path (str): Checkpoint file.
        map_location (str): Where tensors go. Defaults to 'cpu'.
        mmap (bool): Memory-map the tensors instead of reading them (a
            cheap validity check of a large file). Defaults to False.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: The file cannot be read as a safe checkpoint.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(errno.ENOENT, 'checkpoint not found', path)
    setup_safe_checkpoint_loading()
    try:
        ckpt = torch.load(
            path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r'(?:unsupported|Unsupported global:) GLOBAL (\S+)',
                          str(err))
        what = f'it needs {found.group(1)}' if found else \
            'it pickles objects that are not weights'
        raise ValueError(
            f'{path}: refused to unpickle, {what}; a trusted checkpoint of '
            'plain MMEngine can be converted with '
            'dmformer.engine.load_legacy_checkpoint') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        detail = str(err).strip().splitlines()[0].split('. ')[0]
        raise ValueError(f'{path}: not a readable checkpoint, truncated or '
                         f'corrupt ({detail[:100]})') from None
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path}: not a checkpoint (a '
                         f'{type(ckpt).__name__}, not a dict)')
    return ckpt


def load_legacy_checkpoint(src: str, dst: str) -> None:
    """Re-save a *trusted* checkpoint written without this fix.

    The source is loaded with ``weights_only=False`` (full pickle: only use
    it on files you created yourself) and written back in the safe format.

    Args:
        src (str): Path of the trusted legacy checkpoint.
        dst (str): Output path.
    """
    setup_safe_checkpoint_loading()
    checkpoint = torch.load(src, map_location='cpu', weights_only=False)
    torch.save(checkpoint, dst)
