#!/usr/bin/env bash
# Shared launcher of dist_train.sh / dist_test.sh:  _dist_run.sh NPROC TOOL.py ARGS...
# One node by default; NNODES, NODE_RANK, MASTER_ADDR, PORT for several. PYTHON picks the
# interpreter (default: the repo's .venv). On a CPU-only torch the tools use gloo.
set -euo pipefail
NPROC=$1
TOOL=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
exec "$PY" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --nproc_per_node="$NPROC" \
  --master_port="${PORT:-29500}" "$ROOT/tools/$TOOL" "${@:3}" --launcher pytorch
