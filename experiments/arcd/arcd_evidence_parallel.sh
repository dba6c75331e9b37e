#!/usr/bin/env bash
# experiments/arcd/arcd_evidence.sh on a machine with many cores or a GPU: one process per seed and chain at
# once, then the tables over all seeds from the result.json files (NO_TRAIN: that pass trains nothing; a run that no
# chain trained is named as missing, so a time-limited machine never starts one there). Each run is the
# same single-seed run the serial script makes (same configs, options and seed, hence the same data
# order); only the order in which runs happen changes.
#
#   experiments/arcd/arcd_evidence_parallel.sh [CHAIN ...]    CHAIN: STEP[,STEP ...][:RUN[+RUN ...]]
#
# A chain is steps of experiments/arcd/arcd_evidence.sh run one after another in one process per seed;
# ':RUN+RUN' restricts its steps to those runs (ONLY, seg_seeds.py --only), so that `cam:calm cam:cbam cam:ca`
# trains the three attention runs of a seed side by side. Default chains: cam label dlv3p. `cam` trains unet and
# arcd_unet first (it re-lists step unet's runs), so the ARCD(U-Net)-vs-U-Net pair of every seed is among the
# first runs. A run of one seed must belong to one chain only (unet and cam share unet and arcd_unet: put
# them in one chain, or give cam only its own runs): two processes would train the same run folder. The
# stage-1 base checkpoint of seed 0 ($WORK/stage1/seed0/base) must exist before a chain that needs it starts.
# SEEDS, WORK, PATCHES, S1, S2 as in experiments/arcd/arcd_evidence.sh; OMP_NUM_THREADS defaults to 1 per
# process here.
# Logs: $WORK/parallel_logs/<chain>_seed<S>.log.
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
SEEDS=${SEEDS:-0 1 2}
WORK=${WORK:-work_dirs/seg/arcd_evidence}
export WORK OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ $# -ge 1 ] || set -- cam label dlv3p
logs="$WORK/parallel_logs"
mkdir -p "$logs"
pids=() names=()
for seed in $SEEDS; do
  for chain in "$@"; do
    steps=${chain%%:*} only=
    [ "$steps" = "$chain" ] || only=${chain#*:}
    log="$logs/$(printf '%s' "$chain" | tr ',:+' '___')_seed$seed.log"
    # shellcheck disable=SC2086
    ONLY="${only//+/ }" NO_TRAIN= SEEDS=$seed bash experiments/arcd/arcd_evidence.sh ${steps//,/ } > "$log" 2>&1 &
    pids+=($!) names+=("$chain seed $seed ($log)")
  done
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "arcd_evidence_parallel.sh: ${names[$i]} failed" >&2; failed=1; }
done
[ "$failed" = 0 ] || exit 1
steps=$(printf '%s\n' "${@%%:*}" | tr ',' '\n' | awk '!seen[$0]++' | tr '\n' ' ')
echo "[arcd_evidence_parallel] tables over seeds $SEEDS: $steps"
# shellcheck disable=SC2086
ONLY= NO_TRAIN=1 SEEDS="$SEEDS" bash experiments/arcd/arcd_evidence.sh $steps  # every run of the steps, none trained
