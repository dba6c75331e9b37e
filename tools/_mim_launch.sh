#!/usr/bin/env bash
# Shared by mim_train.sh and mim_test.sh: one process, or GPUS processes per node via torch.distributed.
#   _mim_launch.sh {train|test} TOOLKIT CONFIG GPUS [script args...]
set -euo pipefail
SCRIPT=$1
TOOLKIT=$2
CONFIG=$3
GPUS=$4
shift 4
PYTHON=${PYTHON:-python}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
if [[ $GPUS -gt 1 || $NNODES -gt 1 ]]; then
  exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    -m defect_plugins.launcher "$SCRIPT" "$TOOLKIT" "$CONFIG" "$@" --launcher pytorch
fi
exec "$PYTHON" -m defect_plugins.launcher "$SCRIPT" "$TOOLKIT" "$CONFIG" "$@"
