# ARCD(U-Net) stage 2 on synthetic strips; needs work_dirs/arcd_stage1_recon_strip from stage 1.
#   tools/mim_train.sh mmseg configs/arcd/arcd_stage2_unet_strip.py
_base_ = ['./_base_/strip_stage2_unet.py']
