# Copyright (c) OpenMMLab. All rights reserved.
import ctypes
import subprocess
import sys

import pytest

from dmformer.utils import tune_glibc_malloc


def _is_glibc():
    try:
        ctypes.CDLL('libc.so.6').mallinfo2
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith('linux')


# a fresh interpreter: a 16 MiB block is mmapped by default and comes from
# the heap once the thresholds are raised (mallinfo2().hblkhd = mmapped
# bytes)
_PROBE = '''
import ctypes, sys
from dmformer.utils import tune_glibc_malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
        'fsmblks', 'uordblks', 'fordblks', 'keepcost')]

libc = ctypes.CDLL('libc.so.6')
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
tuned = tune_glibc_malloc() if sys.argv[1] == 'tune' else False
before = libc.mallinfo2().hblkhd
block = libc.malloc(16 << 20)
mmapped = libc.mallinfo2().hblkhd - before
libc.free(block)
print(tuned, mmapped >= 16 << 20)
'''


@pytest.mark.skipif(not _is_glibc(), reason='needs glibc (mallinfo2)')
@pytest.mark.parametrize('mode,expected', [('tune', 'True False'),
                                           ('default', 'False True')])
def test_tune_glibc_malloc_keeps_blocks_on_the_heap(mode, expected):
    out = subprocess.run([sys.executable, '-c', _PROBE, mode],
                         capture_output=True,
                         text=True,
                         check=True)
    assert out.stdout.split()[-2:] == expected.split()


def test_tune_glibc_malloc_opt_out(monkeypatch):
    monkeypatch.setenv('DMFORMER_MALLOPT', '0')
    assert tune_glibc_malloc() is False
    monkeypatch.delenv('DMFORMER_MALLOPT')
    monkeypatch.setattr(sys, 'platform', 'darwin')
    assert tune_glibc_malloc() is False
