#!/usr/bin/env bash
# The NEU-Seg evidence for ARCD (3 seeds, paired runs), as a queue of experiments/arcd/seg_seeds.py calls
# (paired runs see the same data order). One job at a time: run it alone, with both cores.
#
#   experiments/arcd/arcd_evidence.sh STEP [STEP ...]   STEP: patches stage1 unet label cam dlv3p  (or: all)
#                                                        (label = label30 label50)
#
# Schedules are 4 epochs (their cost on a 2-core CPU: docs/RESULTS.md, ARCD section):
#   stage 1: 8840 normal 64-px patches / batch 16 -> 2212 iterations (~8 min per run, 9 runs)
#   stage 2: 3129 NEU-Seg training images / batch 4 -> 3128 iterations (U-Net family ~17 min per run)
# Every stage-2 ARCD run reads the one seed-0 stage-1 base reconstructor (one stage-1 checkpoint for
# all of them), so stage-2 differences are not stage-1 noise. Finished runs are kept, cut-off ones
# resume (experiments/arcd/seg_seeds.py), so the script can be re-run after an interruption.
# WORK (default work_dirs/seg/arcd_evidence) holds everything; PATCHES the normal patches; SEEDS, S1 and S2
# (stage-1 / stage-2 iterations) can be set for a shorter trial; ONLY="NAME ..." trains those runs of each
# step only (seg_seeds.py --only; experiments/arcd/arcd_evidence_parallel.sh gives each run its own process
# with it); NO_TRAIN=1 reports finished runs and trains nothing (seg_seeds.py --no-train).
# Runs from the repository root (it changes there first).
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-work_dirs/seg/arcd_evidence}
PATCHES=${PATCHES:-work_dirs/seg/neu_normal64}
NEU_SEG=${NEU_SEG:-../shared/data/neu_seg}
SEEDS=${SEEDS:-0 1 2}
S1=${S1:-2212}
S2=${S2:-3128}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
STAGE1_CKPT="$WORK/stage1/seed0/base"   # a work dir: its last_checkpoint is read
C=configs/arcd
PY=${PYTHON:-python}  # the interpreter (a test swaps in a recorder)
ONLY=${ONLY:-}
NO_TRAIN=${NO_TRAIN:-}

seg_seeds() {  # experiments/arcd/seg_seeds.py, restricted to $ONLY's runs when it is set
  # shellcheck disable=SC2086
  "$PY" experiments/arcd/seg_seeds.py "$@" ${ONLY:+--only $ONLY} ${NO_TRAIN:+--no-train}
}

stage2_options() {  # the same 4-epoch schedule for every stage-2 run; validation = NEU-Seg test split
  echo "train_cfg.max_iters=$S2 train_cfg.val_interval=$S2 param_scheduler.0.end=$S2" \
       "default_hooks.checkpoint.interval=500"
}

step_patches() {
  [ -d "$PATCHES/train" ] || defect-seg-normal-patches "$NEU_SEG" --out "$PATCHES" --size 64
}

step_stage1() {  # base vs MDC vs MFLM: L2 + 0.01 (1 - SSIM) and RA on all 975 held-out patches
  step_patches
  # shellcheck disable=SC2046
  seg_seeds base=$C/arcd_stage1_recon_neu-normal64.py mdc=$C/arcd_stage1_recon-mdc_neu-normal64.py \
      mflm=$C/arcd_stage1_recon-mflm_neu-normal64.py --work-dir "$WORK/stage1" --key recon_loss --reference base \
      --seeds $SEEDS --cfg-options "train_dataloader.dataset.data_root=$PATCHES" \
      "val_dataloader.dataset.data_root=$PATCHES" "test_dataloader.dataset.data_root=$PATCHES" \
      val_dataloader.dataset.indices=None test_dataloader.dataset.indices=None \
      train_cfg.max_iters=$S1 train_cfg.val_interval=$S1 "param_scheduler.0.milestones=[$((S1 * 4 / 5))]" \
      default_hooks.checkpoint.interval=500
}

step_unet() {  # ARCD(U-Net) vs U-Net
  # shellcheck disable=SC2046
  seg_seeds unet=$C/unet_plain_neu.py arcd_unet=$C/arcd_stage2_unet_neu.py \
      --work-dir "$WORK/stage2" --compare arcd_unet:unet --seeds $SEEDS \
      --run-options "arcd_unet:model.reconstructor_checkpoint=$STAGE1_CKPT" --cfg-options $(stage2_options)
}

label_fraction() {  # U-Net vs ARCD(U-Net) on fraction $1 of the training labels (the same images for both)
  # shellcheck disable=SC2046
  seg_seeds unet=$C/unet_plain_neu.py arcd_unet=$C/arcd_stage2_unet_neu.py \
      --work-dir "$WORK/label$1" --compare arcd_unet:unet --seeds $SEEDS \
      --run-options "arcd_unet:model.reconstructor_checkpoint=$STAGE1_CKPT" \
      --cfg-options $(stage2_options) "train_dataloader.dataset.label_fraction=$1" \
      "train_dataloader.dataset.subset_seed={seed}"
}
step_label30() { label_fraction 0.3; }
step_label50() { label_fraction 0.5; }
step_label() { step_label30; step_label50; }  # 30 % and 50 % (100 % is step unet)

step_cam() {  # CALM vs CBAM vs CA vs none inside ARCD(U-Net); re-lists step_unet's two runs (kept, not retrained)
  local ckpt="model.reconstructor_checkpoint=$STAGE1_CKPT"
  # shellcheck disable=SC2046
  seg_seeds unet=$C/unet_plain_neu.py arcd_unet=$C/arcd_stage2_unet_neu.py \
      calm=$C/arcd_stage2_unet-calm_neu.py cbam=$C/arcd_stage2_unet-cbam_neu.py ca=$C/arcd_stage2_unet-ca_neu.py \
      --work-dir "$WORK/stage2" --compare arcd_unet:unet calm:arcd_unet cbam:arcd_unet ca:arcd_unet --seeds $SEEDS \
      --run-options "arcd_unet:$ckpt" "calm:$ckpt" "cbam:$ckpt" "ca:$ckpt" --cfg-options $(stage2_options)
}

step_dlv3p() {  # ARCD(DeepLabV3+) vs DeepLabV3+ (~70 min per run at 200 px: 7 h for 3 seeds)
  # shellcheck disable=SC2046
  seg_seeds dlv3p=$C/deeplabv3plus_plain_neu.py arcd_dlv3p=$C/arcd_stage2_deeplabv3plus_neu.py \
      --work-dir "$WORK/dlv3p" --compare arcd_dlv3p:dlv3p --seeds $SEEDS \
      --run-options "arcd_dlv3p:model.reconstructor_checkpoint=$STAGE1_CKPT" --cfg-options $(stage2_options)
}

[ $# -ge 1 ] || { sed -n '2,18p' "$0"; exit 2; }
[ "$1" = all ] && set -- stage1 unet label cam dlv3p
for step in "$@"; do
  declare -F "step_$step" >/dev/null || { echo "arcd_evidence.sh: unknown step '$step'" >&2; exit 2; }
  echo "[arcd_evidence] $step: $(date -u +%FT%TZ)"
  "step_$step"
done
