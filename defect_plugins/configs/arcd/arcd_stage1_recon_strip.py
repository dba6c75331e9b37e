# ARCD stage 1, plain reconstructor (no MFLM), synthetic strips.
#   tools/mim_train.sh mmseg configs/arcd/arcd_stage1_recon_strip.py
_base_ = ['./_base_/strip_stage1.py']
