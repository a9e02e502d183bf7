#!/usr/bin/env bash
# The quick start's data step (tools/quickstart.sh runs it): synthetic nuScenes and its info
# files in DATA, made once per set of generator flags and reused while the flags are the same.
#
#   bash tools/quickstart_data.sh [--check] DATA LOG_DIR "FLAGS"
#
#   DATA      data root; a new or empty folder, or one this script wrote before
#   LOG_DIR   gets dataset_summary.json and create_data.log
#   FLAGS     tools/make_synthetic_nuscenes.py flags (with --version v1.0-...)
#   --check   only the refusals below (the quick start runs them before its set-up)
#   PY        (environment) the Python to run, default .venv/bin/python
#
# DATA is the project's when it holds the stamp DATA/.ptqat-data-flags (written before the
# generation starts, holding the flags once the set is complete). Only such a folder is ever
# deleted (to remake it with other flags, or after an interrupted run); a folder without the
# stamp that is not empty, e.g. a user's own nuScenes, is refused (exit 2) and left untouched.
set -euo pipefail
CHECK_ONLY=0
if [[ ${1:-} == --check ]]; then CHECK_ONLY=1; shift; fi  # only the refusals below, no work
if [[ $# -ne 3 ]]; then
  echo "usage: bash tools/quickstart_data.sh [--check] DATA LOG_DIR \"FLAGS\"" >&2
  exit 2
fi
DATA=$1 LOG=$2 FLAGS=$3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
VERSION=$(sed -n 's/.*--version \(v1\.0-[a-z]*\).*/\1/p' <<< "$FLAGS")
if [[ -z "$VERSION" ]]; then
  echo "quickstart: the data flags \"$FLAGS\" lack --version v1.0-mini or --version v1.0-trainval" >&2
  exit 2
fi
stamp="$DATA/.ptqat-data-flags"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$FLAGS" && -f "$DATA/nuscenes_infos_val.pkl" ]]; then
  echo "synthetic nuScenes and infos already at $DATA ($FLAGS)"
  exit 0
fi
if [[ -e "$DATA" && ! -d "$DATA" ]]; then
  echo "quickstart: PTQAT_DATA=$DATA is a file, not a folder; set PTQAT_DATA to a new or empty folder" >&2
  exit 2
fi
if [[ -d "$DATA" && ! -f "$stamp" && -n "$(ls -A "$DATA")" ]]; then
  suggest="${DATA%/}_quickstart"  # a sibling folder that is new (or empty) today
  n=2
  while [[ -d "$suggest" && -n "$(ls -A "$suggest")" ]]; do suggest="${DATA%/}_quickstart$n"; n=$((n + 1)); done
  cat >&2 <<EOF
quickstart: refusing to use $DATA: the folder is not empty and the quick start did not write it
(no $stamp), so it is left untouched (the quick start deletes and rewrites only its own data).
Set PTQAT_DATA to a new or empty folder for the synthetic set, e.g.
    PTQAT_DATA=$suggest bash tools/quickstart.sh
or move $DATA away yourself. (The quick start runs on the synthetic set only; for your own
nuScenes follow the README's "Your own nuScenes" steps.)
EOF
  exit 2
fi
[[ $CHECK_ONLY == 1 ]] && exit 0
if [[ -f "$stamp" ]]; then
  echo "removing the quick start's earlier data at $DATA (flags: $(head -c 300 "$stamp"))"
  rm -rf "$DATA"
fi
mkdir -p "$DATA" "$LOG"
echo "incomplete: $FLAGS" > "$stamp"  # the folder is the project's from now on
echo "synthetic nuScenes -> $DATA ($FLAGS)"
# shellcheck disable=SC2086
"$PY" "$ROOT/tools/make_synthetic_nuscenes.py" "$DATA" $FLAGS > "$LOG/dataset_summary.json"
echo "info files (mmdet3d's converter + BEV fields)"
"$PY" "$ROOT/tools/create_data.py" nuscenes --root-path "$DATA" --version "$VERSION" \
  > "$LOG/create_data.log" 2>&1
echo "$FLAGS" > "$stamp"
