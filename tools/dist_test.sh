#!/usr/bin/env bash
# Distributed testing, mmdet3d style (CPU/gloo too):  bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [args...]
set -euo pipefail
exec bash "$(dirname "$0")/_dist_run.sh" "$3" test.py "$1" "$2" "${@:4}"
