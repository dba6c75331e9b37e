#!/usr/bin/env bash
# Evaluate a checkpoint the way `mim test` does, without openmim.
#
#   tools/mim_test.sh {mmpretrain|mmseg} CONFIG CHECKPOINT [GPUS] [test.py args...]
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 {mmpretrain|mmseg} CONFIG CHECKPOINT [GPUS] [test.py args...]" >&2
  exit 2
fi
TOOLKIT=$1
CONFIG=$2
CHECKPOINT=$3
shift 3
if [[ ! -f $CHECKPOINT ]]; then
  echo "$0: error: checkpoint $CHECKPOINT not found" >&2
  exit 2
fi
GPUS=1
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  GPUS=$1
  shift
fi
exec "$(dirname "$0")/_mim_launch.sh" test "$TOOLKIT" "$CONFIG" "$GPUS" "$CHECKPOINT" "$@"
