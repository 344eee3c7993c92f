# Copyright (c) OpenMMLab. All rights reserved.
"""Write files so that a reader never sees a partial one.

A checkpoint or pointer file written in place is truncated for as long as
the write lasts: a SIGKILL, a node failure or a full disk in that window
leaves an ``epoch_N.pth`` that exists but does not load. :func:`atomic_write`
writes the bytes to a temporary file in the same folder (``.<name>.<random
hex>.part``, hidden and never matched by a checkpoint pattern), flushes it
to the disk and renames it to the final name with :func:`os.replace`, which
POSIX makes atomic within one file system: the final name is either absent,
the previous complete file or the new complete file.

:class:`AtomicLocalBackend` is MMEngine's local file backend with such a
``put``; it is registered as the file backend ``'atomic_local'``, which
:class:`~dmformer.engine.hooks.CheckpointHook` uses for local folders.
"""
import errno
import os
import os.path as osp
import re
import uuid
from pathlib import Path
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend

#: Suffix of the temporary files of :func:`atomic_write`.
PART_SUFFIX = '.part'
_PART_RE = re.compile(r'^\.(?P<name>.+)\.[0-9a-f]{8}' +
                      re.escape(PART_SUFFIX) + '$')


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file
    system lets a folder be opened or synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(data: Union[bytes, bytearray, memoryview, str],
                 path: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` atomically.

    The data go to ``.<name>.<8 hex digits>.part`` in the folder of
    ``path`` (created if missing), are flushed to the disk (``fsync``) and
    the file is renamed to ``path`` with :func:`os.replace`. On any error,
    e.g. a full disk, the temporary file is deleted and ``path`` is left as
    it was; an :class:`OSError` without a file name (``write`` and
    ``fsync`` give none) is raised again naming ``path``. A process killed
    during the write leaves only the temporary file, which
    :func:`remove_unfinished_writes` deletes.

    Args:
        data (bytes | str): Content; a str is encoded with ``encoding``.
        path (str | Path): Final file name.
        encoding (str): Encoding of a str ``data``. Defaults to 'utf-8'.
    """
    path = str(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_path = osp.join(
        folder, f'.{osp.basename(path)}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}')
    try:
        # builtin open (not mkstemp): the file gets the mode of a plain
        # open(), i.e. the user's umask, as the final file should
        with open(tmp_path, 'xb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as err:
        try:
            os.remove(tmp_path)
        except OSError:
            pass
        if isinstance(err, OSError) and err.filename is None:
            raise OSError(err.errno, err.strerror or os.strerror(
                err.errno or errno.EIO), path) from err
        raise
    _fsync_folder(folder)


def remove_unfinished_writes(folder: str) -> List[str]:
    """Delete the temporary files that :func:`atomic_write` left in
    ``folder`` when its process was killed during a write.

    Only call it when no other process writes into ``folder``.

    Args:
        folder (str): Folder to clean (not recursive).

    Returns:
        list[str]: Paths of the files removed.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if _PART_RE.match(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def check_writable(folder: str, what: str = 'output folder') -> None:
    """Fail now, in one line, if no file can be written into ``folder``.

    The folder is created if missing, then a small probe file is written,
    flushed to the disk and deleted: a read-only or full file system, a
    path under a file or a missing permission raise here, before a long
    computation whose results could not be saved.

    Args:
        folder (str): The folder the outputs go into.
        what (str): How the error message calls it. Defaults to
            'output folder'.

    Raises:
        OSError: ``cannot write into the <what>: <reason>``, with
            ``folder`` as its file name.
    """
    probe = osp.join(folder, f'.write-test.{uuid.uuid4().hex[:8]}')
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, 'xb') as f:
            f.write(bytes(4096))
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise OSError(err.errno,
                      f'cannot write into the {what}: '
                      f'{err.strerror or err}',
                      folder) from None
    finally:
        try:
            os.remove(probe)
        except OSError:
            pass


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend whose writes are atomic.

    ``put`` and ``put_text`` use :func:`atomic_write`; reading, listing and
    removing are those of :class:`mmengine.fileio.LocalBackend`. Select it
    with ``backend_args=dict(backend='atomic_local')``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically (see
        :func:`atomic_write`).

        Args:
            obj (bytes): Data to be written.
            filepath (str or Path): Path to write data.
        """
        atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (see
        :func:`atomic_write`).

        Args:
            obj (str): Data to be written.
            filepath (str or Path): Path to write data.
            encoding (str): The encoding format used to encode the ``obj``.
                Defaults to 'utf-8'.
        """
        atomic_write(obj, filepath, encoding=encoding)
