# Copyright (c) OpenMMLab. All rights reserved.
"""Choose the checkpoint that ``tools/train.py --resume`` continues from."""
import os
import os.path as osp
import re
from typing import Callable, List, Optional, Tuple

from .checkpoint_compat import read_checkpoint

#: Names of the checkpoints MMEngine's ``CheckpointHook`` writes with its
#: default ``filename_tmpl`` (``epoch_{}.pth`` / ``iter_{}.pth``).
CHECKPOINT_RE = re.compile(r'^(?P<unit>epoch|iter)_(?P<step>\d+)\.pth$')


def _pointer_folder(work_dir: str) -> Optional[str]:
    """The folder named by the ``last_checkpoint`` pointer of ``work_dir``
    (where the checkpoints are when ``CheckpointHook.out_dir`` is set), or
    None if there is no readable pointer to a local folder."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    try:
        with open(pointer) as f:
            target = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not target or '://' in target:
        return None
    return osp.dirname(osp.abspath(target))


def list_checkpoints(work_dir: str) -> List[str]:
    """The checkpoints of a work dir, newest first.

    These are the ``epoch_N.pth`` / ``iter_N.pth`` files of ``work_dir``
    and of the folder its ``last_checkpoint`` pointer names (if another),
    ordered by their step ``N``, then by modification time; other files
    (``best_*.pth``, published copies, unfinished writes) are not resume
    points.

    Args:
        work_dir (str): The work dir of a training run.

    Returns:
        list[str]: Paths, newest first.
    """
    folders = {osp.abspath(work_dir)}
    pointed = _pointer_folder(work_dir)
    if pointed is not None:
        folders.add(pointed)
    found: List[Tuple[int, float, str]] = []
    for folder in sorted(folders):
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            match = CHECKPOINT_RE.match(name)
            path = osp.join(folder, name)
            if match and osp.isfile(path):
                found.append(
                    (int(match.group('step')), osp.getmtime(path), path))
    return [path for _, _, path in sorted(found, reverse=True)]


def find_resumable_checkpoint(
        work_dir: str,
        log: Callable[[str], None] = print) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that loads.

    Each candidate of :func:`list_checkpoints` is read with
    :func:`~dmformer.engine.read_checkpoint` (memory-mapped: the tensors are
    not read); a truncated, corrupt or unsafe one is skipped with one line
    through ``log`` saying why, e.g. a file cut short by a run killed while
    writing it before checkpoints were written atomically.

    Args:
        work_dir (str): The work dir of a training run.
        log (Callable[[str], None]): Where the lines go. Defaults to
            :func:`print`.

    Returns:
        str | None: The checkpoint to resume from; None if the work dir
        has none that loads.
    """
    for path in list_checkpoints(work_dir):
        try:
            read_checkpoint(path, mmap=True)
        except OSError as err:  # e.g. removed meanwhile, unreadable
            reason = err.strerror or str(err)
        except ValueError as err:  # message: '<path>: <reason>'
            reason = str(err)
            if reason.startswith(f'{path}: '):
                reason = reason[len(path) + 2:]
        else:
            return path
        log(f'--resume: skipped {path}: {reason}')
    return None
