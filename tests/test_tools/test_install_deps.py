# Copyright (c) OpenMMLab. All rights reserved.
"""tools/install_deps.sh on faked machines, without installing anything.

The machine probe is faked with ``INSTALL_DEPS_PROBE``, the installed mmcv
with a stand-in package put first on ``PYTHONPATH``, and ``PYTHON`` is a
wrapper that refuses ``-m pip``, so that no test can install anything.
"""
import os
import os.path as osp
import shlex
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools/install_deps.sh')
GIB_KB = 2**20
#: a CUDA machine: CUDA torch, two GPUs, nvcc, 64 GiB available, 16 CPUs
CUDA_MACHINE = dict(
    torch_cuda='12.1',
    gpu_caps='8.0,9.0',
    nvcc='/usr/local/cuda/bin/nvcc',
    mem_available_kb=str(64 * GIB_KB),
    nproc='16')


def probe(**answers) -> str:
    """The ``INSTALL_DEPS_PROBE`` value of these answers."""
    return ';'.join(f'{key}={value}' for key, value in answers.items())


@pytest.fixture
def python(tmp_path):
    """A PYTHON for the script that fails on ``-m pip`` and runs this
    interpreter otherwise."""
    wrapper = tmp_path / 'python'
    wrapper.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = -m ] && [ "$2" = pip ]; then\n'
        '  echo "pip was called: $*" >&2; exit 97\n'
        'fi\n'
        f'exec {shlex.quote(sys.executable)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
def fake_pip(tmp_path):
    """A PYTHON whose ``-m pip`` only writes its arguments and the build
    variables to ``pip.log`` (nothing is installed), and that runs this
    interpreter otherwise. Returns the wrapper and the log path."""
    log = tmp_path / 'pip.log'
    wrapper = tmp_path / 'python_fake_pip'
    wrapper.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = -m ] && [ "$2" = pip ]; then\n'
        '  echo "$* | FORCE_CUDA=$FORCE_CUDA TORCH_CUDA_ARCH_LIST='
        '$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS MMCV_WITH_OPS='
        f'$MMCV_WITH_OPS" >> {shlex.quote(str(log))}; exit 0\n'
        'fi\n'
        f'exec {shlex.quote(sys.executable)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), log


def fake_mmcv(tmp_path, cuda='not available', version='2.1.0',
              ops_error=None) -> str:
    """A folder with a stand-in ``mmcv`` package whose ops report
    ``cuda`` as their compiled CUDA version (or fail to import with
    ``ops_error``)."""
    pkg = tmp_path / 'fake_site' / 'mmcv'
    (pkg / 'ops').mkdir(parents=True)
    (pkg / '__init__.py').write_text(f'__version__ = {version!r}\n')
    ops = f'raise ImportError({ops_error!r})\n' if ops_error else (
        f'def get_compiling_cuda_version():\n    return {cuda!r}\n')
    (pkg / 'ops' / '__init__.py').write_text(ops)
    return str(tmp_path / 'fake_site')


def run(python, args, machine=None, pythonpath=None, **env):
    """Run the script with a faked machine probe (None: the real probe)
    and extra environment variables."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ('INSTALL_DEPS_PROBE', 'MAX_JOBS', 'TORCH_CUDA_ARCH_LIST',
                     'MMCV_WHEEL', 'PYTHONPATH')
    }
    environ['PYTHON'] = python
    if machine is not None:
        environ['INSTALL_DEPS_PROBE'] = probe(**machine)
    if pythonpath is not None:
        environ['PYTHONPATH'] = pythonpath
    environ.update(env)
    return subprocess.run(['bash', SCRIPT] + args,
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=120,
                          env=environ)


def one_line_error(proc) -> str:
    """The script's error: exactly one line on stderr."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('[install_deps] error: '), lines[0]
    assert 'pip was called' not in proc.stderr
    return lines[0]


def build_env(proc) -> dict:
    """The ``KEY=VALUE`` lines of ``--print-build-env``."""
    assert proc.returncode == 0, proc.stderr
    return dict(
        line.split('=', 1) for line in proc.stdout.splitlines()
        if not line.startswith('[install_deps]'))


def installed_mmcv_has_cuda() -> bool:
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


@pytest.mark.parametrize('which', ['stand-in', 'installed'])
def test_cuda_machine_refuses_mmcv_without_cuda_ops(tmp_path, python, which):
    if which == 'installed' and installed_mmcv_has_cuda():
        pytest.skip('the installed mmcv has CUDA ops')
    path = fake_mmcv(tmp_path) if which == 'stand-in' else None
    proc = run(python, ['--check-mmcv'], CUDA_MACHINE, path)
    assert proc.returncode == 1
    assert '[install_deps] CUDA machine (torch CUDA 12.1; GPUs: sm 8.0, ' \
        'sm 9.0' in proc.stdout
    error = one_line_error(proc)
    assert 'mmcv is 2.1.0 but its ops were built without CUDA' in error
    # how to fix it: rebuild, or a prebuilt wheel
    assert 'bash tools/install_deps.sh' in error
    assert 'MMCV_WHEEL=/path/to/mmcv-2.1.0-' in error


def test_cuda_machine_accepts_mmcv_with_cuda_ops(tmp_path, python):
    proc = run(python, ['--check-mmcv'], CUDA_MACHINE,
               fake_mmcv(tmp_path, cuda='12.1'))
    assert proc.returncode == 0, proc.stderr
    assert 'mmcv 2.1.0 with ops accepted (CUDA 12.1)' in proc.stdout


@pytest.mark.parametrize(
    'machine, description',
    [(dict(torch_cuda=''), 'CPU machine (torch is a CPU build)'),
     # pip's default CUDA torch on a machine with neither GPU nor nvcc
     (dict(torch_cuda='12.1', gpu_caps='', nvcc=''),
      'CPU machine (torch is a CUDA 12.1 build, but no GPU is visible')])
def test_cpu_machine_accepts_mmcv_without_cuda_ops(tmp_path, python, machine,
                                                   description):
    # the stand-in, and the mmcv installed here
    for path in (fake_mmcv(tmp_path), None):
        proc = run(python, ['--check-mmcv'], machine, path)
        assert proc.returncode == 0, proc.stderr
        assert description in proc.stdout
        assert 'mmcv 2.1.0 with ops accepted' in proc.stdout


@pytest.mark.parametrize('mmcv, problem', [
    (dict(version='2.2.0'), 'the installed mmcv is 2.2.0, not 2.1.0'),
    (dict(ops_error='libcudart.so.12: cannot open'),
     'mmcv.ops does not import (libcudart.so.12: cannot open)'),
])
def test_check_mmcv_names_other_problems(tmp_path, python, mmcv, problem):
    proc = run(python, ['--check-mmcv'], dict(torch_cuda=''),
               fake_mmcv(tmp_path, **mmcv))
    assert proc.returncode == 1
    assert problem in one_line_error(proc)


@pytest.mark.parametrize(
    'mem_gib, nproc, jobs',
    [(64, 16, 16), (64, 4, 4), (7, 16, 2), (9, 16, 3), (2, 16, 1),
     (0, 16, 1)])
def test_max_jobs_bounded_by_memory(python, mem_gib, nproc, jobs):
    machine = dict(CUDA_MACHINE, mem_available_kb=str(mem_gib * GIB_KB),
                   nproc=str(nproc))
    env = build_env(run(python, ['--print-build-env'], machine))
    # 3 GiB per nvcc job, at most nproc, at least 1
    assert env['MAX_JOBS'] == str(jobs)
    assert env['FORCE_CUDA'] == '1' and env['MMCV_WITH_OPS'] == '1'


def test_max_jobs_of_the_user_and_of_cpu_machines(python):
    env = build_env(
        run(python, ['--print-build-env'], CUDA_MACHINE, MAX_JOBS='7'))
    assert env['MAX_JOBS'] == '7'
    # CPU machine: as before, nproc jobs whatever the memory, no CUDA
    env = build_env(
        run(python, ['--print-build-env'],
            dict(torch_cuda='', mem_available_kb=str(GIB_KB), nproc='5')))
    assert env == dict(MMCV_WITH_OPS='1', MAX_JOBS='5')


@pytest.mark.parametrize('machine, user, arch_list', [
    (dict(gpu_caps='8.6,8.0,8.6,7.5'), None, '7.5;8.0;8.6'),
    (dict(gpu_caps='12.0,9.0,8.9'), None, '8.9;9.0;12.0'),
    (dict(gpu_caps='8.6'), '8.0;9.0+PTX', '8.0;9.0+PTX'),
    # a build host: nvcc but no visible GPU -> torch's own architectures
    (dict(gpu_caps='', torch_archs='5.0,8.0,9.0'), None, '5.0;8.0;9.0'),
])
def test_arch_list_from_capabilities(python, machine, user, arch_list):
    env = {} if user is None else dict(TORCH_CUDA_ARCH_LIST=user)
    proc = run(python, ['--print-build-env'], dict(CUDA_MACHINE, **machine),
               **env)
    assert build_env(proc)['TORCH_CUDA_ARCH_LIST'] == arch_list


def test_gpu_without_nvcc_stops_before_building(tmp_path, python):
    machine = dict(CUDA_MACHINE, nvcc='')
    proc = run(python, ['--print-build-env'], machine)
    assert proc.returncode == 1
    error = one_line_error(proc)
    assert 'no CUDA compiler was found' in error
    assert 'CUDA 12.1 toolkit' in error and 'MMCV_WHEEL=' in error
    # the install itself stops there too: no pip call for mmcv (the wrapper
    # would exit with 97), torch is kept
    proc = run(python, [], machine, fake_mmcv(tmp_path))
    assert proc.returncode == 1
    assert 'already installed' in proc.stdout
    assert 'no CUDA compiler was found' in one_line_error(proc)


@pytest.mark.parametrize('env, message', [
    (dict(INSTALL_DEPS_PROBE='gpus=8.0'),
     "INSTALL_DEPS_PROBE: expected key=value items with the keys"),
    (dict(INSTALL_DEPS_PROBE='nproc=many'),
     "nproc must be a whole number, got 'many'"),
    (dict(MMCV_WHEEL='/nowhere/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'),
     'MMCV_WHEEL: no such file: /nowhere/mmcv-2.1.0-'),
    (dict(MMCV_WHEEL='/nowhere/mmcv-2.2.0-cp311-cp311-linux_x86_64.whl'),
     'MMCV_WHEEL must be an mmcv 2.1.0 wheel'),
])
def test_bad_input_is_one_line(python, env, message):
    args = [] if 'MMCV_WHEEL' in env else ['--print-build-env']
    proc = run(python, args, **env)
    assert proc.returncode == 2
    assert message in one_line_error(proc)
    assert proc.stdout == ''  # stopped before anything else


def test_unknown_argument(python):
    proc = run(python, ['--check'])
    assert proc.returncode == 2
    assert "unknown argument '--check'" in proc.stderr


def test_cuda_build_variables_and_refused_result(tmp_path, fake_pip):
    """On a CUDA machine with an mmcv without CUDA ops, the script rebuilds
    mmcv with the CUDA variables, without pip's cache, and refuses the
    result if its ops still lack CUDA (the stand-in never has them)."""
    python, log = fake_pip
    machine = dict(CUDA_MACHINE, mem_available_kb=str(10 * GIB_KB))
    proc = run(python, [], machine, fake_mmcv(tmp_path))
    assert proc.returncode == 1
    assert 'ops were built without CUDA' in proc.stdout  # why it rebuilds
    assert 'TORCH_CUDA_ARCH_LIST=8.0;9.0 MAX_JOBS=3' in proc.stdout
    calls = log.read_text().splitlines()
    assert len(calls) == 2 and 'requirements/build.txt' in calls[0]
    assert calls[1] == (
        '-m pip install --disable-pip-version-check --no-cache-dir '
        '--no-build-isolation --force-reinstall --no-deps mmcv==2.1.0 | '
        'FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=8.0;9.0 MAX_JOBS=3 '
        'MMCV_WITH_OPS=1')
    error = one_line_error(proc)
    assert 'the mmcv just built is 2.1.0 but its ops were built without ' \
        'CUDA' in error
    assert 'MMCV_WHEEL=/path/to/mmcv-2.1.0-' in error


def test_prebuilt_wheel_is_checked_the_same_way(tmp_path, fake_pip):
    python, log = fake_pip
    wheel = tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.write_bytes(b'')
    proc = run(python, [], CUDA_MACHINE, fake_mmcv(tmp_path),
               MMCV_WHEEL=str(wheel))
    assert proc.returncode == 1
    # installed instead of a source build
    assert log.read_text().splitlines() == [
        '-m pip install --disable-pip-version-check --no-cache-dir '
        f'--force-reinstall --no-deps {wheel} | FORCE_CUDA= '
        'TORCH_CUDA_ARCH_LIST= MAX_JOBS= MMCV_WITH_OPS='
    ]
    error = one_line_error(proc)
    assert f'the mmcv of {wheel} is 2.1.0 but its ops were built without ' \
        'CUDA' in error
    assert 'use a wheel of mmcv 2.1.0 built with its ops and CUDA 12.1' in \
        error


def test_cpu_build_is_unchanged(tmp_path, fake_pip):
    """Without CUDA a missing mmcv is built as before: MMCV_WITH_OPS=1,
    MAX_JOBS=nproc, pip's cache allowed, no CUDA variables."""
    python, log = fake_pip
    pkg = tmp_path / 'no_mmcv' / 'mmcv'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text('raise ImportError("no mmcv here")\n')
    proc = run(python, [], dict(torch_cuda=''),
               str(tmp_path / 'no_mmcv'))
    nproc = subprocess.run(['nproc'], capture_output=True,
                           text=True).stdout.strip()
    assert log.read_text().splitlines()[1] == (
        '-m pip install --disable-pip-version-check --no-build-isolation '
        f'mmcv==2.1.0 | FORCE_CUDA= TORCH_CUDA_ARCH_LIST= MAX_JOBS={nproc} '
        'MMCV_WITH_OPS=1')
    # the stand-in still does not import after the (faked) build
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        'mmcv.ops failed to import after the build'
