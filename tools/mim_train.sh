#!/usr/bin/env bash
# Train an mmpretrain or mmseg config the way `mim train` does, without openmim: the same as
# the console command `defect-train` (defect_plugins/runners/launcher.py), for a clone without it on PATH.
#
#   tools/mim_train.sh {mmpretrain|mmseg} CONFIG [GPUS] [train.py args...]
#
# CONFIG is a file path or a packaged config name (`defect-configs list`). GPUS (default 1) > 1
# starts that many processes with torch.distributed (`--launcher pytorch`); on a machine without
# CUDA they talk over gloo. Across nodes, as OpenMMLab's dist_train.sh:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/mim_train.sh mmseg CONFIG 8
# PYTHON picks the interpreter (default: python on PATH).
exec "${PYTHON:-python}" -m defect_plugins.runners.launcher launch train "$@"
