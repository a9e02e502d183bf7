#!/usr/bin/env bash
# The quick start on the embedded synthetic nuScenes, end to end on 2 CPU cores:
#   set-up -> synthetic nuScenes -> info files -> metric sanity check on ground truth
#   -> FP BEVDet-tiny (or BEVDepth4D-tiny, BEVFormer-tiny, SparseBEV-tiny, BEVDet-seg/occ-tiny)
#   -> PTQ, QAT, PTQAT, PTQAT-large (W4A8) -> evaluation of each with the real NuScenesMetric
#   (Occ3DMetric / BEVMapSegMetric for the occupancy and map segmentation models: mIoU,
#   per-class IoU in WORK_DIR/per_class_iou.md) -> results table (WORK_DIR/results.md, also printed).
#
#   bash tools/quickstart.sh [WORK_DIR]          (default work_dirs/quickstart)
#   PTQAT_MODEL=bevdepth4d bash tools/quickstart.sh [WORK_DIR]   (work_dirs/quickstart_bevdepth4d)
#   PTQAT_MODEL=bevformer bash tools/quickstart.sh [WORK_DIR]    (work_dirs/quickstart_bevformer)
#   PTQAT_MODEL=sparsebev bash tools/quickstart.sh [WORK_DIR]    (work_dirs/quickstart_sparsebev)
#   PTQAT_MODEL=bevdet-occ bash tools/quickstart.sh [WORK_DIR]   (work_dirs/quickstart_bevdet-occ;
#       Occ3D occupancy, data in data/nuscenes_synth_occ, the set with the Occ3D labels)
#   PTQAT_MODEL=bevdet-seg bash tools/quickstart.sh [WORK_DIR]   (work_dirs/quickstart_bevdet-seg;
#       BEV map segmentation on the detection set)
#
# The FP model is the committed checkpoints/<model>-tiny_synth_fp16.pth, trained by
# `python tools/train.py configs/<model>/<model>-tiny_synth.py` on a set of these flags (BEVDet
# and BEVDepth4D: made before the scenes were seeded by name, i.e. other train scenes, none of
# them a val scene now; SparseBEV: this set).
#
# Environment:
#   PTQAT_MODEL        bevdet (default), bevdepth4d, bevformer, sparsebev, bevdet-occ (Occ3D
#                      occupancy) or bevdet-seg (BEV map segmentation)
#   PTQAT_VARIANTS     the fine-tuned rows to run (default "qat ptqat ptqat-large" plus the model's
#                      extras), e.g. "ptqat" when time is short; FP and PTQ always run
#   PTQAT_SEED         seed of the calibration batches and the fine-tuning (default 0, as the configs)
#   PTQAT_DETERMINISTIC=1  train and test with --deterministic (1 thread, fixed hash seed, deterministic
#                      algorithms): a rerun on the same machine gives the same table bit for bit
#   PTQAT_TRAIN_FP=1   train the FP model here instead (adds 15-25 min; SparseBEV-tiny ~1 h)
#   PTQAT_FP_CKPT      use this FP checkpoint instead
#   PTQAT_DATA         data root (default data/nuscenes_synth, data/nuscenes_synth_occ for
#                      bevdet-occ: the path the configs use): a new or
#                      empty folder, or one the quick start wrote (stamp .ptqat-data-flags); any
#                      other non-empty folder is refused and left untouched
#   PTQAT_DATA_FLAGS   tools/make_synthetic_nuscenes.py flags (default: the set the tiny configs
#                      and committed checkpoints are made for)
#   PTQAT_SKIP_SETUP=1 do not run tools/setup_env.sh (the environment is already built)
#   PTQAT_DRY_RUN=1    print the settings (configs, checkpoint, data root and flags, config
#                      overrides) as key=value lines and stop: nothing is made, trained or set up
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${PTQAT_MODEL:-bevdet}
case "$MODEL" in
  bevdet) WORK=${1:-$ROOT/work_dirs/quickstart}; NAME=BEVDet-tiny; EXTRA=() ;;
  bevdepth4d) WORK=${1:-$ROOT/work_dirs/quickstart_bevdepth4d}; NAME=BEVDepth4D-tiny
              EXTRA=(ptqat-rel) ;;  # + PTQAT ranked by the relative discrepancy
  bevformer) WORK=${1:-$ROOT/work_dirs/quickstart_bevformer}; NAME=BEVFormer-tiny; EXTRA=() ;;
  sparsebev) WORK=${1:-$ROOT/work_dirs/quickstart_sparsebev}; NAME=SparseBEV-tiny; EXTRA=() ;;
  bevdet-occ) WORK=${1:-$ROOT/work_dirs/quickstart_bevdet-occ}; NAME=BEVDet-occ-tiny; EXTRA=() ;;
  bevdet-seg) WORK=${1:-$ROOT/work_dirs/quickstart_bevdet-seg}; NAME=BEVDet-seg-tiny; EXTRA=() ;;
  *) echo "PTQAT_MODEL=$MODEL is not supported; use bevdet, bevdepth4d, bevformer, sparsebev, bevdet-occ or bevdet-seg" >&2
     exit 2 ;;
esac
# The data set the tiny configs are tuned for (see configs/bevdet/bevdet-tiny_synth.py); every
# model uses it (SparseBEV-tiny's previous frames are the previous key frames, 0.5 s apart: see
# configs/sparsebev/sparsebev-tiny_synth.py), the occupancy model with the Occ3D labels in a
# folder of its own (its config's data root).
OCC_FLAG=" --no-occupancy"
CFG_DATA=$ROOT/data/nuscenes_synth
if [[ "$MODEL" == bevdet-occ ]]; then OCC_FLAG=""; CFG_DATA=$ROOT/data/nuscenes_synth_occ; fi
DATA=${PTQAT_DATA:-$CFG_DATA}
DATA_FLAGS=${PTQAT_DATA_FLAGS:-"--version v1.0-trainval --train-scenes 24 --val-scenes 4 --samples-per-scene 10 --cam-sweeps 0 --lidar-sweeps 0$OCC_FLAG"}
VERSION=$(sed -n 's/.*--version \(v1\.0-[a-z]*\).*/\1/p' <<< "$DATA_FLAGS")
FP_CFG=configs/$MODEL/$MODEL-tiny_synth.py
Q_CFG=configs/ptqat/$MODEL/$MODEL-tiny_%s-w4a8_synth.py
read -r -a VARIANTS <<< "${PTQAT_VARIANTS:-qat ptqat ptqat-large ${EXTRA[*]+${EXTRA[*]}}}"
for v in "${VARIANTS[@]}"; do  # shellcheck disable=SC2059
  [[ -f "$ROOT/$(printf "$Q_CFG" "$v")" ]] || { echo "PTQAT_VARIANTS: $v has no config $(printf "$Q_CFG" "$v")" >&2; exit 2; }
done
if [[ "${PTQAT_TRAIN_FP:-0}" != 1 && ! -f "${PTQAT_FP_CKPT:-$ROOT/checkpoints/$MODEL-tiny_synth_fp16.pth}" ]]; then
  echo "FP checkpoint ${PTQAT_FP_CKPT:-checkpoints/$MODEL-tiny_synth_fp16.pth} not found; set PTQAT_TRAIN_FP=1 (train it here) or PTQAT_FP_CKPT" >&2
  exit 2
fi

cd "$ROOT"  # a relative PTQAT_DATA or WORK_DIR is relative to the repository
# A non-empty PTQAT_DATA the quick start did not write is refused (and kept) before any work.
bash tools/quickstart_data.sh --check "$DATA" "$WORK" "$DATA_FLAGS"
[[ "${PTQAT_SKIP_SETUP:-0}" == 1 || "${PTQAT_DRY_RUN:-0}" == 1 ]] || bash "$ROOT/tools/setup_env.sh"
PY="$ROOT/.venv/bin/python"
DATA_KV=()  # config overrides for a data root other than the config's own (CFG_DATA)
if [[ "$DATA" != "$CFG_DATA" ]]; then
  # the datasets', the evaluators' and those of transforms that read files themselves (the
  # sweep loader, the Occ3D / map ground-truth loaders)
  mapfile -t DATA_KV < <("$PY" tools/data_root_options.py "$FP_CFG" "$DATA")
  [[ ${#DATA_KV[@]} -gt 0 ]] || { echo "quickstart: no data-root options for $FP_CFG" >&2; exit 2; }
fi
DATA_OPTS=(${DATA_KV[@]+--cfg-options "${DATA_KV[@]}"})
SEED_KV=("randomness.seed=${PTQAT_SEED:-0}")
DET=()
case "${PTQAT_DETERMINISTIC:-0}" in
  0) ;;
  1) DET=(--deterministic) ;;
  *) echo "PTQAT_DETERMINISTIC=${PTQAT_DETERMINISTIC} is not supported; use 0 or 1" >&2; exit 2 ;;
esac
if [[ "${PTQAT_DRY_RUN:-0}" == 1 ]]; then  # what would run, one key=value a line; nothing is done
  printf '%s\n' "model=$MODEL" "name=$NAME" "work_dir=$WORK" "data=$DATA" "config_data=$CFG_DATA" \
    "data_flags=$DATA_FLAGS" "fp_config=$FP_CFG" \
    "fp_checkpoint=${PTQAT_FP_CKPT:-$ROOT/checkpoints/$MODEL-tiny_synth_fp16.pth}"
  for v in ptq qat ptqat ptqat-large ${EXTRA[@]+"${EXTRA[@]}"}; do
    # shellcheck disable=SC2059
    printf 'quant_config=%s\n' "$(printf "$Q_CFG" "$v")"
  done
  for kv in ${DATA_KV[@]+"${DATA_KV[@]}"}; do printf 'data_option=%s\n' "$kv"; done
  exit 0
fi
mkdir -p "$WORK"
start=$(date +%s)
step() { printf '[quickstart %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
last_ckpt() { cat "$1/last_checkpoint"; }

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

step "4/5 PTQ (calibration only), then ${VARIANTS[*]} fine-tuning from the FP model"
# shellcheck disable=SC2059
"$PY" tools/test.py "$(printf "$Q_CFG" ptq)" "$FP_CKPT" --work-dir "$WORK/ptq" ${DET[@]+"${DET[@]}"} \
  --out "$WORK/ptq/metrics.json" --cfg-options "${SEED_KV[@]}" ${DATA_KV[@]+"${DATA_KV[@]}"} \
  > "$WORK/ptq_test.log" 2>&1
for v in "${VARIANTS[@]}"; do
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
"$PY" tools/summarize_ptqat.py "$WORK" --variants fp ptq "${VARIANTS[@]}"
step "done; logs, reports (discrepancy.png per run) and results.md in $WORK"
