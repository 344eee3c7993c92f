# Copyright (c) OpenMMLab. All rights reserved.
"""Machine probe and mmcv check used by ``tools/install_deps.sh``.

It runs before DMFormer is installed, so it imports only the standard
library, torch and (for ``check``) mmcv.

``probe`` prints ``key=value`` lines: ``cuda`` (1 on a CUDA machine: torch
is a CUDA build AND a GPU is visible or ``$CUDA_HOME/bin/nvcc`` exists),
``torch_cuda``, ``machine`` (a description), ``arch_list`` and ``jobs``
(the build's ``TORCH_CUDA_ARCH_LIST`` and ``MAX_JOBS``; values set by the
user win) and ``build_error`` (why a CUDA build cannot run, empty if it
can). ``INSTALL_DEPS_PROBE`` replaces answers of the probe for tests:
``;``-separated ``key=value`` items with the keys of :data:`KEYS`.

``check`` prints two lines about the installed mmcv: its state
(``missing``, ``version``, ``no-ops``, ``cpu`` or ``cuda``) and a detail
(the error, the version or the compiled CUDA version).

Usage::

    python tools/misc/mmcv_build_env.py probe
    python tools/misc/mmcv_build_env.py check
"""
import os
import re
import sys
from typing import Callable, Dict, List

#: the answers of the probe that INSTALL_DEPS_PROBE may replace
KEYS = ('torch_cuda', 'gpu_caps', 'torch_archs', 'nvcc', 'mem_available_kb',
        'nproc')
#: memory of one nvcc job building mmcv's ops (2-3 GiB)
GIB_PER_JOB = 3


def fail(message: str) -> None:
    """Print a one-line error and exit with status 2."""
    print(f'[install_deps] error: {message}', file=sys.stderr)
    sys.exit(2)


def fake_answers() -> Dict[str, str]:
    """The answers given by ``INSTALL_DEPS_PROBE``."""
    fake = {}
    for item in os.environ.get('INSTALL_DEPS_PROBE', '').split(';'):
        if not item.strip():
            continue
        key, sep, value = item.partition('=')
        if not sep or key.strip() not in KEYS:
            fail(f'INSTALL_DEPS_PROBE: expected key=value items with the '
                 f'keys {", ".join(KEYS)}, got {item.strip()!r}')
        fake[key.strip()] = value.strip()
    return fake


def split(text: str) -> List[str]:
    """Items of a comma-, semicolon- or space-separated list."""
    return [v for v in re.split(r'[,;\s]+', text) if v]


def import_torch():
    """Import torch, or stop with one line."""
    try:
        import torch
    except ImportError as error:
        fail(f'torch does not import ({error}): install it first (bash '
             'tools/install_deps.sh)')
    return torch


def torch_cuda() -> str:
    """``torch.version.cuda`` ('' for a CPU build)."""
    return import_torch().version.cuda or ''


def gpu_caps() -> str:
    """Compute capabilities of the visible GPUs, e.g. ``'8.0,9.0'``."""
    torch = import_torch()
    if not torch.cuda.is_available():
        return ''
    return ','.join('%d.%d' % torch.cuda.get_device_capability(i)
                    for i in range(torch.cuda.device_count()))


def torch_archs() -> str:
    """The architectures torch was built for, as capabilities."""
    archs = []
    for arch in import_torch().cuda.get_arch_list():
        match = re.fullmatch(r'sm_(\d+)(\d)', arch)
        if match:
            archs.append(f'{match.group(1)}.{match.group(2)}')
    return ','.join(archs)


def nvcc() -> str:
    """Path of the CUDA compiler the build would use ('' if none)."""
    import_torch()
    from torch.utils.cpp_extension import CUDA_HOME
    path = os.path.join(CUDA_HOME, 'bin', 'nvcc') if CUDA_HOME else ''
    return path if path and os.path.isfile(path) else ''


def mem_available_kb() -> str:
    """MemAvailable of /proc/meminfo in KiB ('' if unknown)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return line.split()[1]
    except OSError:
        pass
    return ''


def usable_cpus() -> str:
    """CPUs this process may run on (what ``nproc`` prints)."""
    try:
        return str(len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return str(os.cpu_count() or 1)


def number(key: str, text: str) -> int:
    """``text`` as a whole number, or stop with one line."""
    if not text.isdigit():
        fail(f'{key} must be a whole number, got {text!r}')
    return int(text)


def probe() -> Dict[str, str]:
    """The machine and the variables of an mmcv build on it."""
    fake = fake_answers()

    def answer(key: str, real: Callable[[], str]) -> str:
        return fake[key] if key in fake else real()

    cuda_version = answer('torch_cuda', torch_cuda)
    caps = split(answer('gpu_caps', gpu_caps))
    compiler = answer('nvcc', nvcc) if cuda_version else ''
    cuda = bool(cuda_version and (caps or compiler))
    nproc = max(1, number('nproc', answer('nproc', usable_cpus)))
    if not cuda_version:
        machine = 'CPU machine (torch is a CPU build)'
    elif not cuda:
        machine = (f'CPU machine (torch is a CUDA {cuda_version} build, but '
                   'no GPU is visible and no nvcc was found)')
    else:
        gpus = ', '.join('sm ' + c for c in caps) or 'none visible'
        machine = (f'CUDA machine (torch CUDA {cuda_version}; GPUs: {gpus}; '
                   f'nvcc: {compiler or "not found"})')

    user_archs = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
    user_jobs = os.environ.get('MAX_JOBS', '').strip()
    arch_list, build_error = '', ''
    if cuda:
        if user_archs:
            arch_list = user_archs
        elif caps:
            arch_list = ';'.join(
                sorted(set(caps),
                       key=lambda c: tuple(
                           int(v) if v.isdigit() else 0
                           for v in c.split('.'))))
        else:
            arch_list = ';'.join(split(answer('torch_archs', torch_archs)))
        if not compiler:
            build_error = (
                f'a GPU is visible and torch is a CUDA {cuda_version} build, '
                'but no CUDA compiler was found ($CUDA_HOME/bin/nvcc): '
                f'install the CUDA {cuda_version} toolkit and set CUDA_HOME, '
                'or install a prebuilt mmcv 2.1.0 wheel with CUDA ops: '
                'MMCV_WHEEL=/path/to/mmcv-2.1.0-<tags>.whl bash '
                'tools/install_deps.sh')
        elif not arch_list:
            build_error = (
                'no GPU is visible and torch lists no CUDA architecture: set '
                'TORCH_CUDA_ARCH_LIST to the compute capabilities of the '
                'GPUs to build for, e.g. TORCH_CUDA_ARCH_LIST="8.0;9.0"')
    if user_jobs:
        jobs = user_jobs
    elif cuda:
        mem_kb = answer('mem_available_kb', mem_available_kb)
        per_job = GIB_PER_JOB * 2**20
        jobs = str(
            max(1, min(nproc,
                       number('mem_available_kb', mem_kb) //
                       per_job)) if mem_kb else nproc)
    else:
        jobs = str(nproc)
    return dict(
        cuda=str(int(cuda)),
        torch_cuda=cuda_version,
        machine=machine,
        arch_list=arch_list,
        jobs=jobs,
        build_error=build_error)


def check() -> List[str]:
    """The state of the installed mmcv and a detail."""
    try:
        import mmcv
    except Exception as error:  # any import failure is reported
        return ['missing', ' '.join(str(error).split())]
    if mmcv.__version__ != '2.1.0':
        return ['version', mmcv.__version__]
    try:
        from mmcv.ops import get_compiling_cuda_version
        cuda = get_compiling_cuda_version()
    except Exception as error:  # a broken build of the ops
        return ['no-ops', ' '.join(str(error).split())]
    return ['cpu' if cuda == 'not available' else 'cuda', cuda]


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in ('probe', 'check'):
        fail('usage: mmcv_build_env.py probe|check')
    if sys.argv[1] == 'probe':
        for key, value in probe().items():
            print(f'{key}={value}')
    else:
        print('\n'.join(check()))


if __name__ == '__main__':
    main()
