#!/usr/bin/env bash
# Evaluate a checkpoint the way `mim test` does, without openmim: the same as the console
# command `defect-test` (defect_plugins/runners/launcher.py), for a clone without it on PATH.
#
#   tools/mim_test.sh {mmpretrain|mmseg} CONFIG CHECKPOINT [GPUS] [test.py args...]
#
# CONFIG is a file path or a packaged config name; GPUS and NNODES/NODE_RANK/MASTER_ADDR/PORT
# as for tools/mim_train.sh. PYTHON picks the interpreter (default: python on PATH).
exec "${PYTHON:-python}" -m defect_plugins.runners.launcher launch test "$@"
