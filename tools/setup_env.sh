#!/usr/bin/env bash
# Build (or reuse) the repo-local virtual environment `.venv` with the OpenMMLab 2.x stack
# that the ptqat plugin runs on: torch, mmengine 0.10.7, mmcv 2.1.0 WITH compiled ops,
# mmdet 3.3.0, mmdet3d 1.4.0, nuscenes-devkit 1.2.0, numpy<2, onnx, onnxruntime, matplotlib,
# pytest, and the plugin itself (editable).
#
# Idempotent: a stamp file records a hash of this script and the requirement files; when it
# matches and the stack imports, the script returns in about a second.
#
# Environment variables:
#   PTQAT_VENV     where to build the venv                 (default: <repo>/.venv)
#   PYTHON         the interpreter that creates the venv   (default: python3; 3.8..3.11)
#   TORCH_SPEC     the torch requirement                   (default: torch==2.13.0, the CPU
#                  wheel this machine has; a GPU user installs a CUDA torch first, see README)
#   PTQAT_WHEELS   a folder of prebuilt wheels used as a pip --find-links cache
#                  (default: <repo>/../shared/wheels when it exists). Without a matching
#                  mmcv wheel, mmcv 2.1.0 is compiled from source with its ops (~50 min on 2 cores).
#   MMCV_INDEX     an extra find-links URL for OpenMMLab's prebuilt CUDA mmcv wheels, e.g.
#                  https://download.openmmlab.com/mmcv/dist/cu121/torch2.1/index.html
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PTQAT_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
WHEELS=${PTQAT_WHEELS:-$ROOT/../shared/wheels}
STAMP="$VENV/.ptqat-setup-stamp"

log() { printf '[setup_env] %s\n' "$*" >&2; }

want=$(cat "$ROOT/tools/setup_env.sh" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" \
       "$ROOT/setup.py" | sha256sum | cut -c1-16)-$TORCH_SPEC

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
   && "$VENV/bin/python" -c "import mmcv.ops, mmdet3d.models, ptqat" 2>/dev/null; then
  log "environment up to date: $VENV"
  exit 0
fi

if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))'; then
  log "ERROR: $PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())');"
  log "       mmcv 2.1.0 / mmdet3d 1.4.0 support Python 3.8 to 3.11. Set PYTHON=python3.11."
  exit 1
fi

[[ -x "$VENV/bin/python" ]] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
FIND=()
if [[ -d "$WHEELS" ]]; then FIND+=(--find-links "$WHEELS"); log "wheel cache: $WHEELS"; fi
if [[ -n "${MMCV_INDEX:-}" ]]; then FIND+=(--find-links "$MMCV_INDEX"); fi

# Constraints that keep the resolver away from what this stack cannot run with:
# numpy 2 (mmcv/mmdet3d/numba builds), pandas 3, opencv >= 4.11 (needs numpy 2).
CONSTRAINTS="$VENV/ptqat-constraints.txt"
cat > "$CONSTRAINTS" <<'EOF'
numpy<2
pandas<2.3
opencv-python<4.11
opencv-python-headless<4.11
EOF
PIP+=(-c "$CONSTRAINTS")

log "1/5 build tools and torch ($TORCH_SPEC)"
"${PIP[@]}" -q wheel ninja psutil "numpy<2"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" -q "$TORCH_SPEC"
fi

log "2/5 mmengine and mmcv 2.1.0 with compiled ops"
"${PIP[@]}" -q mmengine==0.10.7
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  # A wheel in the cache is taken as is; otherwise pip compiles the sdist (MMCV_WITH_OPS=1),
  # whose setup.py needs pkg_resources, i.e. setuptools<70 (torch 2.13 declares setuptools>=77;
  # pip warns about that, and the warning is harmless: torch does not use setuptools at run time).
  if ! ls "${WHEELS}"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    log "no mmcv wheel in the cache: compiling mmcv 2.1.0 with its ops (about 50 min on 2 cores)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "setuptools<70"
  fi
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "${PIP[@]}" -q --no-build-isolation "${FIND[@]}" mmcv==2.1.0
fi

log "3/5 mmdet, nuscenes-devkit, onnx, test tools"
"${PIP[@]}" -q -r "$ROOT/requirements-dev.txt" mmdet==3.3.0 nuscenes-devkit==1.2.0 \
  onnx onnxruntime matplotlib tqdm "pandas<2.3"

log "4/5 mmdet3d 1.4.0 (--no-deps) and what it really imports"
# mmdet3d 1.4.0 declares mmdet<3.3 and open3d, but runs with mmdet 3.3.0 and imports no open3d.
"${PIP[@]}" -q --no-deps mmdet3d==1.4.0
"${PIP[@]}" -q numba trimesh plyfile networkx scikit-image lyft_dataset_sdk

log "5/5 the ptqat plugin (editable)"
"${PIP[@]}" -q --no-deps -e "$ROOT"

"$VENV/bin/python" - <<'EOF'
import mmcv, mmcv.ops, mmdet, mmdet3d, mmengine, numpy, torch
import mmdet3d.models, mmdet3d.datasets, mmdet3d.evaluation  # noqa: F401
import nuscenes, onnx, onnxruntime, ptqat  # noqa: F401
print(f'[setup_env] torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, '
      f'mmdet {mmdet.__version__}, mmdet3d {mmdet3d.__version__}, numpy {numpy.__version__}')
EOF
echo "$want" > "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
