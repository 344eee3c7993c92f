#!/usr/bin/env bash
# Install DMFormer and its pinned OpenMMLab stack into the current Python.
#
#   bash tools/install_deps.sh            # runtime stack + `pip install -e .`
#   bash tools/install_deps.sh --tests    # ... plus the test/lint tools
#
# Order matters:
#   1. torch first (2.13.0; an existing torch>=2.0 build, e.g. CUDA, is kept),
#      because pip's build isolation would otherwise pull a CUDA torch just to
#      build mmcv;
#   2. build tools: setuptools>=77.0.3 (torch 2.13 needs it) but <82 (mmcv
#      2.1.0's setup.py imports pkg_resources), wheel, ninja;
#   3. mmcv 2.1.0 from source WITH its ops (MMCV_WITH_OPS=1,
#      --no-build-isolation); ~13 min on 2 cores, skipped when an accepted
#      mmcv is already installed (below);
#   4. mmengine 0.10.7, mmdet 3.3.0, the runtime requirements and the
#      package itself (editable).
# Set PYTHON to choose the interpreter (default: python3).
#
# CUDA. The machine is a CUDA machine when torch is a CUDA build
# (torch.version.cuda is set) AND either a GPU is visible
# (torch.cuda.is_available()) or the CUDA compiler is there
# ($CUDA_HOME/bin/nvcc, with CUDA_HOME as torch.utils.cpp_extension finds
# it: a build host without a GPU). A CUDA torch alone, e.g. pip's default
# torch on a CPU-only machine, is not enough: with neither a GPU to run on
# nor nvcc to compile with, mmcv is built as on any CPU machine. On a CUDA
# machine mmcv's ops are built with CUDA:
#   - FORCE_CUDA=1;
#   - TORCH_CUDA_ARCH_LIST: the compute capabilities of the visible GPUs
#     (e.g. "8.0;9.0"); with no GPU visible, the architectures torch was
#     built for (torch.cuda.get_arch_list(); a long build). One set by you
#     is kept;
#   - MAX_JOBS: MemAvailable of /proc/meminfo / 3 GiB (an nvcc job takes
#     2-3 GiB), at most nproc, at least 1. One set by you is kept;
#   - pip --no-cache-dir, so that a CPU-only mmcv wheel that pip cached from
#     an earlier build is never reused, and --force-reinstall --no-deps
#     when an mmcv 2.1.0 (without CUDA ops) is installed already.
# A visible GPU without nvcc stops the build with a message: install the
# CUDA toolkit of torch's CUDA version, or use a prebuilt wheel.
# Without CUDA (CPU machines, CI) mmcv is built as it always was
# (MMCV_WITH_OPS=1, MAX_JOBS=${MAX_JOBS:-$(nproc)}, pip's cache used).
#
# An installed mmcv is accepted, and the build skipped, when it is 2.1.0,
# `mmcv.ops` imports and, on a CUDA machine,
# `mmcv.ops.get_compiling_cuda_version()` is a CUDA version rather than
# 'not available'. A freshly built or installed mmcv that fails this check
# stops the script with a one-line error that says how to fix it.
#
# MMCV_WHEEL=/path/to/mmcv-2.1.0-<tags>.whl installs that prebuilt wheel
# instead of building mmcv from source; it is checked the same way.
#
# Modes that install nothing (they import torch where the probe needs it):
#   bash tools/install_deps.sh --check-mmcv       # exit 0: the installed
#                                                 # mmcv is accepted, 1: not
#   bash tools/install_deps.sh --print-build-env  # the machine and the
#                                                 # variables of the build
# INSTALL_DEPS_PROBE replaces answers of the machine probe (for tests):
# ';'-separated key=value items, keys torch_cuda (torch.version.cuda, empty
# for a CPU build), gpu_caps (comma-separated capabilities of the visible
# GPUs, empty for none), torch_archs (comma-separated, as gpu_caps), nvcc
# (path, empty for none), mem_available_kb and nproc.
set -euo pipefail

PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WITH_TESTS=0
MODE=install
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1 ;;
    --check-mmcv) MODE=check ;;
    --print-build-env) MODE=print ;;
    *) echo "install_deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

pip_install() {
  "$PYTHON" -m pip install --disable-pip-version-check "$@"
}

say() { echo "[install_deps] $*"; }
die() { echo "[install_deps] error: $*" >&2; exit "${2:-1}"; }

MMCV_WHEEL=${MMCV_WHEEL:-}
if [ -n "$MMCV_WHEEL" ]; then
  case "$(basename "$MMCV_WHEEL")" in
    mmcv-2.1.0-*.whl) ;;
    *) die "MMCV_WHEEL must be an mmcv 2.1.0 wheel (mmcv-2.1.0-<tags>.whl), got '$MMCV_WHEEL'" 2 ;;
  esac
  [ -f "$MMCV_WHEEL" ] || die "MMCV_WHEEL: no such file: $MMCV_WHEEL" 2
fi

# The machine probe (tools/misc/mmcv_build_env.py probe): sets CUDA (1/0),
# MACHINE (a description), TORCH_CUDA, ARCH_LIST and JOBS (the build's
# TORCH_CUDA_ARCH_LIST and MAX_JOBS) and BUILD_ERROR (why a CUDA build cannot
# run here; empty if it can).
BUILD_ENV="$ROOT/tools/misc/mmcv_build_env.py"
probe_machine() {
  local out key value
  out=$("$PYTHON" "$BUILD_ENV" probe)
  CUDA=0 TORCH_CUDA='' MACHINE='' ARCH_LIST='' JOBS='' BUILD_ERROR=''
  while IFS='=' read -r key value; do
    case "$key" in
      cuda) CUDA=$value ;;
      torch_cuda) TORCH_CUDA=$value ;;
      machine) MACHINE=$value ;;
      arch_list) ARCH_LIST=$value ;;
      jobs) JOBS=$value ;;
      build_error) BUILD_ERROR=$value ;;
    esac
  done <<<"$out"
}

# The installed mmcv (tools/misc/mmcv_build_env.py check): sets MMCV_STATE
# to one of missing, version (not 2.1.0), no-ops (mmcv.ops does not import),
# no-cuda (ops without CUDA on a CUDA machine) or ok, and MMCV_DETAIL
# (version, error or compiled CUDA version).
check_mmcv() {
  local out
  out=$("$PYTHON" "$BUILD_ENV" check 2>/dev/null || true)
  MMCV_STATE=$(sed -n 1p <<<"$out")
  MMCV_DETAIL=$(sed -n 2p <<<"$out")
  [ -n "$MMCV_STATE" ] || { MMCV_STATE=missing; MMCV_DETAIL='mmcv failed to import'; }
  if [ "$MMCV_STATE" = cpu ]; then
    MMCV_STATE=$([ "$CUDA" = 1 ] && echo no-cuda || echo ok)
  elif [ "$MMCV_STATE" = cuda ]; then
    MMCV_STATE=ok
  fi
}

# The one-line reason why the installed mmcv is not accepted ($1: what it is,
# e.g. "the installed mmcv").
mmcv_problem() {
  case "$MMCV_STATE" in
    missing) echo "$1 does not import ($MMCV_DETAIL)" ;;
    version) echo "$1 is $MMCV_DETAIL, not 2.1.0" ;;
    no-ops) echo "$1 is 2.1.0 but mmcv.ops does not import ($MMCV_DETAIL)" ;;
    no-cuda) echo "$1 is 2.1.0 but its ops were built without CUDA (mmcv.ops.get_compiling_cuda_version() is 'not available') on a $MACHINE" ;;
  esac
}

WHEEL_FIX="install a prebuilt mmcv 2.1.0 wheel with CUDA ops for torch's CUDA instead: MMCV_WHEEL=/path/to/mmcv-2.1.0-<tags>.whl bash tools/install_deps.sh"

# Stops the script unless the mmcv just built or installed is accepted.
require_mmcv() {
  check_mmcv
  [ "$MMCV_STATE" = ok ] && return 0
  if [ -n "$MMCV_WHEEL" ]; then
    die "$(mmcv_problem "the mmcv of $MMCV_WHEEL"): use a wheel of mmcv 2.1.0 built with its ops$([ "$CUDA" = 1 ] && echo " and CUDA $TORCH_CUDA") for this torch and Python"
  elif [ "$CUDA" = 1 ]; then
    die "$(mmcv_problem 'the mmcv just built'): check that nvcc of \$CUDA_HOME works and read the build log above, or $WHEEL_FIX"
  fi
  die "$(mmcv_problem 'the mmcv just built'), see the build log above"
}

if [ "$MODE" != install ]; then
  probe_machine
  say "$MACHINE"
  if [ "$MODE" = print ]; then
    [ -z "$BUILD_ERROR" ] || die "$BUILD_ERROR"
    echo "MMCV_WITH_OPS=1"
    if [ "$CUDA" = 1 ]; then
      echo "FORCE_CUDA=1"
      echo "TORCH_CUDA_ARCH_LIST=$ARCH_LIST"
    fi
    echo "MAX_JOBS=$JOBS"
    exit 0
  fi
  check_mmcv
  if [ "$MMCV_STATE" = ok ]; then
    say "mmcv 2.1.0 with ops accepted ($([ "$MMCV_DETAIL" = 'not available' ] && echo 'ops without CUDA' || echo "CUDA $MMCV_DETAIL"))"
    exit 0
  fi
  if [ "$MMCV_STATE" = no-cuda ]; then
    die "$(mmcv_problem 'the installed mmcv'): rebuild it with CUDA ops by running bash tools/install_deps.sh (needs nvcc of CUDA $TORCH_CUDA), or $WHEEL_FIX"
  fi
  die "$(mmcv_problem 'the installed mmcv'): run bash tools/install_deps.sh"
fi

# 1. torch
if "$PYTHON" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 0) else 1)' 2>/dev/null; then
  say "torch $("$PYTHON" -c 'import torch; print(torch.__version__)') already installed"
else
  say "installing torch 2.13.0"
  pip_install torch==2.13.0
fi

# 2-3. mmcv with compiled ops (with CUDA on a CUDA machine)
probe_machine
check_mmcv
if [ -n "$MMCV_WHEEL" ]; then
  say "installing mmcv from $MMCV_WHEEL"
  reinstall=()
  [ "$MMCV_STATE" = missing ] || reinstall=(--force-reinstall --no-deps)
  pip_install --no-cache-dir ${reinstall[@]+"${reinstall[@]}"} "$MMCV_WHEEL"
  require_mmcv
elif [ "$MMCV_STATE" = ok ]; then
  say "mmcv 2.1.0 with ops already installed (skipping the source build)"
elif [ "$CUDA" = 1 ]; then
  [ -z "$BUILD_ERROR" ] || die "$BUILD_ERROR"
  [ "$MMCV_STATE" != no-cuda ] || say "$(mmcv_problem 'the installed mmcv'): rebuilding it"
  say "building mmcv 2.1.0 with CUDA ops from source on a $MACHINE:" \
    "TORCH_CUDA_ARCH_LIST=$ARCH_LIST MAX_JOBS=$JOBS"
  reinstall=()
  case "$MMCV_STATE" in
    no-ops | no-cuda) reinstall=(--force-reinstall --no-deps) ;;
  esac
  pip_install -r "$ROOT/requirements/build.txt"
  MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH_LIST" \
    MAX_JOBS="$JOBS" \
    pip_install --no-cache-dir --no-build-isolation ${reinstall[@]+"${reinstall[@]}"} \
    mmcv==2.1.0
  require_mmcv
else
  say "building mmcv 2.1.0 with ops from source (about 13 minutes on 2 cores)"
  pip_install -r "$ROOT/requirements/build.txt"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    pip_install --no-build-isolation mmcv==2.1.0
  "$PYTHON" -c 'import mmcv.ops' || { echo "mmcv.ops failed to import after the build" >&2; exit 1; }
fi

# 4. the rest of the stack and the package
say "installing mmengine, mmdet, runtime requirements and dmformer (editable)"
pip_install -r "$ROOT/requirements/mminstall.txt" -r "$ROOT/requirements/runtime.txt"
pip_install --no-build-isolation --no-deps -e "$ROOT"
if [ "$WITH_TESTS" = 1 ]; then
  pip_install -r "$ROOT/requirements/tests.txt"
fi

"$PYTHON" - <<'PY'
import mmcv, mmcv.ops, mmdet, mmengine, torch, transformers
import dmformer
from dmformer.registry import MODELS  # noqa: F401
cuda = mmcv.ops.get_compiling_cuda_version()
ops = 'ops' if cuda == 'not available' else f'ops, CUDA {cuda}'
print(f'[install_deps] ok: torch {torch.__version__}, mmengine '
      f'{mmengine.__version__}, mmcv {mmcv.__version__} ({ops}), mmdet '
      f'{mmdet.__version__}, transformers {transformers.__version__}, '
      f'dmformer {dmformer.__version__}')
PY
