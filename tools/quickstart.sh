#!/usr/bin/env bash
# The quick start on the embedded synthetic nuScenes: set-up, data set, info files, and the
# real NuScenesMetric on ground-truth predictions (sanity of the whole evaluation path).
#   bash tools/quickstart.sh [WORK_DIR]     (default work_dirs/quickstart)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${1:-$ROOT/work_dirs/quickstart}
DATA=${PTQAT_DATA:-$ROOT/data/nuscenes_synth}
bash "$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"
cd "$ROOT"
mkdir -p "$WORK"
if [[ ! -f "$DATA/v1.0-mini/sample.json" ]]; then
  echo "[quickstart] 1/3 synthetic nuScenes -> $DATA"
  "$PY" tools/make_synthetic_nuscenes.py "$DATA" --version v1.0-mini --train-scenes 8 \
    --val-scenes 2 --samples-per-scene 6 > "$WORK/dataset_summary.json"
else
  echo "[quickstart] 1/3 synthetic nuScenes already at $DATA"
fi
echo "[quickstart] 2/3 info files (mmdet3d converter + BEV fields)"
"$PY" tools/create_data.py nuscenes --root-path "$DATA" --version v1.0-mini > "$WORK/create_data.log" 2>&1
echo "[quickstart] 3/3 NuScenesMetric on ground-truth predictions"
"$PY" tools/check_dataset.py "$DATA" --version v1.0-mini --out "$WORK/dataset_check.md"
echo "[quickstart] done; results in $WORK"
