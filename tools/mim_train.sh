#!/usr/bin/env bash
# Train an mmpretrain or mmseg config the way `mim train` does, without openmim.
#
#   tools/mim_train.sh {mmpretrain|mmseg} CONFIG [GPUS] [train.py args...]
#
# GPUS (default 1) > 1 starts that many processes with torch.distributed (`--launcher pytorch`);
# on a machine without CUDA they talk over gloo. Across nodes, as OpenMMLab's dist_train.sh:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/mim_train.sh mmseg CONFIG 8
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 {mmpretrain|mmseg} CONFIG [GPUS] [train.py args...]" >&2
  exit 2
fi
TOOLKIT=$1
CONFIG=$2
shift 2
GPUS=1
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  GPUS=$1
  shift
fi
exec "$(dirname "$0")/_mim_launch.sh" train "$TOOLKIT" "$CONFIG" "$GPUS" "$@"
