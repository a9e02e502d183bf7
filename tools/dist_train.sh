#!/usr/bin/env bash
# Distributed training, mmdet3d style (CPU/gloo too):  bash tools/dist_train.sh CONFIG NPROC [args...]
set -euo pipefail
exec bash "$(dirname "$0")/_dist_run.sh" "$2" train.py "$1" "${@:3}"
