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
#      --no-build-isolation); ~13 min on 2 cores, skipped when an mmcv 2.1.0
#      whose `mmcv.ops` imports is already installed;
#   4. mmengine 0.10.7, mmdet 3.3.0, the runtime requirements and the
#      package itself (editable).
# Set PYTHON to choose the interpreter (default: python3).
set -euo pipefail

PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WITH_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1 ;;
    *) echo "install_deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

pip_install() {
  "$PYTHON" -m pip install --disable-pip-version-check "$@"
}

say() { echo "[install_deps] $*"; }

# 1. torch
if "$PYTHON" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 0) else 1)' 2>/dev/null; then
  say "torch $("$PYTHON" -c 'import torch; print(torch.__version__)') already installed"
else
  say "installing torch 2.13.0"
  pip_install torch==2.13.0
fi

# 2-3. mmcv with compiled ops
if "$PYTHON" -c 'import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == "2.1.0" else 1)' 2>/dev/null; then
  say "mmcv 2.1.0 with ops already installed (skipping the source build)"
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
print(f'[install_deps] ok: torch {torch.__version__}, mmengine '
      f'{mmengine.__version__}, mmcv {mmcv.__version__} (ops), mmdet '
      f'{mmdet.__version__}, transformers {transformers.__version__}, '
      f'dmformer {dmformer.__version__}')
PY
