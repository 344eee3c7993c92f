# Copyright (c) OpenMMLab. All rights reserved.
import errno
import os
import subprocess

import pytest
from mmengine.fileio import get_file_backend

from dmformer.engine.atomic_io import (AtomicLocalBackend, atomic_write,
                                       check_writable,
                                       remove_unfinished_writes)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_atomic_write_replaces_the_file_when_complete(tmp_path):
    path = tmp_path / 'sub' / 'iter_2.pth'
    atomic_write(b'first', path)
    atomic_write('second', str(path))
    assert path.read_bytes() == b'second'
    # nothing else is left, and the file has the mode of a plain open()
    assert os.listdir(tmp_path / 'sub') == ['iter_2.pth']
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_full_disk_keeps_the_old_file_and_names_the_new(
        tmp_path, monkeypatch):
    path = tmp_path / 'iter_4.pth'
    path.write_bytes(b'old and complete')
    monkeypatch.setattr(os, 'fsync', _enospc)
    with pytest.raises(OSError) as err:
        atomic_write(b'new' * 1000, str(path))
    assert err.value.errno == errno.ENOSPC
    assert err.value.filename == str(path)
    assert path.read_bytes() == b'old and complete'
    assert os.listdir(tmp_path) == ['iter_4.pth']  # no temporary file left

    missing = tmp_path / 'iter_6.pth'
    with pytest.raises(OSError):
        atomic_write(b'new', str(missing))
    assert not missing.exists()


def test_remove_unfinished_writes(tmp_path):
    (tmp_path / '.iter_4.pth.0123abcd.part').write_bytes(b'half')
    (tmp_path / 'iter_2.pth').write_bytes(b'complete')
    (tmp_path / '.hidden').write_bytes(b'not ours')
    (tmp_path / 'x.part').write_bytes(b'not ours either')
    removed = remove_unfinished_writes(str(tmp_path))
    assert removed == [str(tmp_path / '.iter_4.pth.0123abcd.part')]
    assert sorted(os.listdir(tmp_path)) == ['.hidden', 'iter_2.pth', 'x.part']
    assert remove_unfinished_writes(str(tmp_path / 'missing')) == []


def test_atomic_local_backend(tmp_path, monkeypatch):
    backend = get_file_backend(
        str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'bytes', tmp_path / 'a.pth')
    backend.put_text('text', str(tmp_path / 'b.txt'))
    assert backend.get(str(tmp_path / 'a.pth')) == b'bytes'
    assert backend.get_text(str(tmp_path / 'b.txt')) == 'text'
    monkeypatch.setattr(os, 'fsync', _enospc)
    with pytest.raises(OSError):
        backend.put(b'other', tmp_path / 'a.pth')
    assert backend.get(str(tmp_path / 'a.pth')) == b'bytes'


def test_check_writable(tmp_path, monkeypatch):
    check_writable(str(tmp_path / 'new' / 'work'))
    assert os.listdir(tmp_path / 'new' / 'work') == []  # probe removed

    a_file = tmp_path / 'file'
    a_file.write_text('')
    with pytest.raises(OSError) as err:
        check_writable(str(a_file / 'work'), 'work dir')
    assert err.value.filename == str(a_file / 'work')
    assert str(err.value.strerror).startswith(
        'cannot write into the work dir: Not a directory')

    monkeypatch.setattr(os, 'fsync', _enospc)
    with pytest.raises(OSError) as err:
        check_writable(str(tmp_path))
    assert err.value.strerror == ('cannot write into the output folder: '
                                  'No space left on device')
    assert sorted(os.listdir(tmp_path)) == ['file', 'new']


def _mount_tmpfs(folder, options):
    """Mount a tmpfs (needs root and mount rights); False if impossible."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs',
                           str(folder)], capture_output=True)
    return proc.returncode == 0


def test_check_writable_on_a_read_only_file_system(tmp_path):
    folder = tmp_path / 'ro'
    if not _mount_tmpfs(folder, 'ro,size=64k'):
        pytest.skip('cannot mount a tmpfs here')
    try:
        with pytest.raises(OSError) as err:
            check_writable(str(folder / 'work'), 'work dir')
        assert err.value.errno == errno.EROFS  # even for root
        assert err.value.filename == str(folder / 'work')
    finally:
        subprocess.run(['umount', str(folder)])
