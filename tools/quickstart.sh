#!/usr/bin/env bash
# The quick start on the embedded synthetic nuScenes, end to end on 2 CPU cores:
#   set-up -> synthetic nuScenes -> info files -> metric sanity check on ground truth
#   -> FP BEVDet-tiny (or BEVDepth4D-tiny) -> PTQ, QAT, PTQAT, PTQAT-large (W4A8) -> evaluation
#   of each with the real NuScenesMetric -> results table (WORK_DIR/results.md, also printed).
#
#   bash tools/quickstart.sh [WORK_DIR]          (default work_dirs/quickstart)
#   PTQAT_MODEL=bevdepth4d bash tools/quickstart.sh [WORK_DIR]   (work_dirs/quickstart_bevdepth4d)
#   PTQAT_MODEL=sparsebev PTQAT_FP_CKPT=<fp.pth> bash tools/quickstart.sh [WORK_DIR]
#       (work_dirs/quickstart_sparsebev; no SparseBEV-tiny FP checkpoint is committed yet: give one
#       or set PTQAT_TRAIN_FP=1, which takes hours on 2 CPU cores; the data set gets camera sweeps)
#
# The FP model is the committed checkpoints/<model>-tiny_synth_fp16.pth, trained by
# `python tools/train.py configs/<model>/<model>-tiny_synth.py` on a set of these flags made
# before the scenes were seeded by name (other train scenes; none of them is a val scene now).
#
# Environment:
#   PTQAT_MODEL        bevdet (default), bevdepth4d, bevformer or sparsebev (no committed BEVFormer /
#                      SparseBEV FP checkpoint yet: for those, PTQAT_TRAIN_FP=1 or PTQAT_FP_CKPT is required)
#   PTQAT_SEED         seed of the calibration batches and the fine-tuning (default 0, as the configs)
#   PTQAT_DETERMINISTIC=1  train and test with --deterministic (1 thread, fixed hash seed, deterministic
#                      algorithms): a rerun on the same machine gives the same table bit for bit
#   PTQAT_TRAIN_FP=1   train the FP model here instead (adds 15-25 min)
#   PTQAT_FP_CKPT      use this FP checkpoint instead
#   PTQAT_DATA         data root (default data/nuscenes_synth, the path the configs use): a new or
#                      empty folder, or one the quick start wrote (stamp .ptqat-data-flags); any
#                      other non-empty folder is refused and left untouched
#   PTQAT_DATA_FLAGS   tools/make_synthetic_nuscenes.py flags (default: the set the tiny configs
#                      and committed checkpoints are made for)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${PTQAT_MODEL:-bevdet}
case "$MODEL" in
  bevdet) WORK=${1:-$ROOT/work_dirs/quickstart}; NAME=BEVDet-tiny; EXTRA=() ;;
  bevdepth4d) WORK=${1:-$ROOT/work_dirs/quickstart_bevdepth4d}; NAME=BEVDepth4D-tiny
              EXTRA=(ptqat-rel) ;;  # + PTQAT ranked by the relative discrepancy
  bevformer) WORK=${1:-$ROOT/work_dirs/quickstart_bevformer}; NAME=BEVFormer-tiny; EXTRA=() ;;
  sparsebev) WORK=${1:-$ROOT/work_dirs/quickstart_sparsebev}; NAME=SparseBEV-tiny; EXTRA=() ;;
  *) echo "PTQAT_MODEL=$MODEL is not supported; use bevdet, bevdepth4d, bevformer or sparsebev" >&2; exit 2 ;;
esac
# SparseBEV needs camera sweeps (configs/sparsebev/sparsebev-tiny_synth.py); the others do not
SWEEPS=0
[[ "$MODEL" == sparsebev ]] && SWEEPS=2
DATA=${PTQAT_DATA:-$ROOT/data/nuscenes_synth}
# The data set the tiny configs are tuned for (see configs/bevdet/bevdet-tiny_synth.py).
DATA_FLAGS=${PTQAT_DATA_FLAGS:-"--version v1.0-trainval --train-scenes 24 --val-scenes 4 --samples-per-scene 10 --cam-sweeps $SWEEPS --lidar-sweeps 0 --no-occupancy"}
VERSION=$(sed -n 's/.*--version \(v1\.0-[a-z]*\).*/\1/p' <<< "$DATA_FLAGS")
FP_CFG=configs/$MODEL/$MODEL-tiny_synth.py
Q_CFG=configs/ptqat/$MODEL/$MODEL-tiny_%s-w4a8_synth.py
if [[ "${PTQAT_TRAIN_FP:-0}" != 1 && ! -f "${PTQAT_FP_CKPT:-$ROOT/checkpoints/$MODEL-tiny_synth_fp16.pth}" ]]; then
  echo "FP checkpoint ${PTQAT_FP_CKPT:-checkpoints/$MODEL-tiny_synth_fp16.pth} not found; set PTQAT_TRAIN_FP=1 (train it here) or PTQAT_FP_CKPT" >&2
  exit 2
fi

cd "$ROOT"  # a relative PTQAT_DATA or WORK_DIR is relative to the repository
# A non-empty PTQAT_DATA the quick start did not write is refused (and kept) before any work.
bash tools/quickstart_data.sh --check "$DATA" "$WORK" "$DATA_FLAGS"
bash "$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"
mkdir -p "$WORK"
start=$(date +%s)
step() { printf '[quickstart %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
last_ckpt() { cat "$1/last_checkpoint"; }
DATA_KV=()  # config overrides for a data root other than the configs' data/nuscenes_synth
if [[ "$DATA" != "$ROOT/data/nuscenes_synth" ]]; then
  DATA_KV=("train_dataloader.dataset.data_root=$DATA/" "val_dataloader.dataset.data_root=$DATA/"
           "test_dataloader.dataset.data_root=$DATA/" "val_evaluator.data_root=$DATA/"
           "val_evaluator.ann_file=$DATA/nuscenes_infos_val.pkl" "test_evaluator.data_root=$DATA/"
           "test_evaluator.ann_file=$DATA/nuscenes_infos_val.pkl")
  if [[ "$MODEL" == sparsebev ]]; then  # the sweep loader resolves cam_sweeps paths itself
    DATA_KV+=("train_dataloader.dataset.pipeline.0.data_root=$DATA/"
              "val_dataloader.dataset.pipeline.0.data_root=$DATA/"
              "test_dataloader.dataset.pipeline.0.data_root=$DATA/")
  fi
fi
DATA_OPTS=(${DATA_KV[@]+--cfg-options "${DATA_KV[@]}"})
SEED_KV=("randomness.seed=${PTQAT_SEED:-0}")
DET=()
case "${PTQAT_DETERMINISTIC:-0}" in
  0) ;;
  1) DET=(--deterministic) ;;
  *) echo "PTQAT_DETERMINISTIC=${PTQAT_DETERMINISTIC} is not supported; use 0 or 1" >&2; exit 2 ;;
esac

step "1/5 synthetic nuScenes and info files ($DATA_FLAGS)"
PY="$PY" bash tools/quickstart_data.sh "$DATA" "$WORK" "$DATA_FLAGS"
step "2/5 NuScenesMetric on ground-truth predictions (evaluation sanity)"
"$PY" tools/check_dataset.py "$DATA" --version "$VERSION" --out "$WORK/dataset_check.md" > "$WORK/dataset_check.log" 2>&1
cat "$WORK/dataset_check.md"

if [[ "${PTQAT_TRAIN_FP:-0}" != 1 ]]; then
  FP_CKPT=${PTQAT_FP_CKPT:-$ROOT/checkpoints/$MODEL-tiny_synth_fp16.pth}
  step "3/5 FP $NAME: $FP_CKPT"
else
  step "3/5 FP $NAME: training ($FP_CFG)"
  "$PY" tools/train.py "$FP_CFG" --work-dir "$WORK/fp" ${DATA_OPTS[@]+"${DATA_OPTS[@]}"} > "$WORK/fp_train.log" 2>&1
  FP_CKPT=$(last_ckpt "$WORK/fp")
fi
"$PY" tools/test.py "$FP_CFG" "$FP_CKPT" --work-dir "$WORK/fp" --out "$WORK/fp/metrics.json" \
  ${DATA_OPTS[@]+"${DATA_OPTS[@]}"} > "$WORK/fp_test.log" 2>&1

step "4/5 PTQ (calibration only), then QAT, PTQAT, PTQAT-large ${EXTRA[*]+${EXTRA[*]} }fine-tuning from the FP model"
# shellcheck disable=SC2059
"$PY" tools/test.py "$(printf "$Q_CFG" ptq)" "$FP_CKPT" --work-dir "$WORK/ptq" ${DET[@]+"${DET[@]}"} \
  --out "$WORK/ptq/metrics.json" --cfg-options "${SEED_KV[@]}" ${DATA_KV[@]+"${DATA_KV[@]}"} \
  > "$WORK/ptq_test.log" 2>&1
for v in qat ptqat ptqat-large ${EXTRA[@]+"${EXTRA[@]}"}; do
  # shellcheck disable=SC2059
  cfg=$(printf "$Q_CFG" "$v")
  step "    $v: train"
  "$PY" tools/train.py "$cfg" --work-dir "$WORK/$v" ${DET[@]+"${DET[@]}"} --cfg-options "load_from=$FP_CKPT" "${SEED_KV[@]}" \
    ${DATA_KV[@]+"${DATA_KV[@]}"} > "$WORK/${v}_train.log" 2>&1
  step "    $v: test"
  "$PY" tools/test.py "$cfg" "$(last_ckpt "$WORK/$v")" --work-dir "$WORK/$v" ${DET[@]+"${DET[@]}"} \
    --out "$WORK/$v/metrics.json" ${DATA_OPTS[@]+"${DATA_OPTS[@]}"} > "$WORK/${v}_test.log" 2>&1
done

step "5/5 results"
"$PY" tools/summarize_ptqat.py "$WORK" --variants fp ptq qat ptqat ptqat-large ${EXTRA[@]+"${EXTRA[@]}"}
step "done; logs, reports (discrepancy.png per run) and results.md in $WORK"
