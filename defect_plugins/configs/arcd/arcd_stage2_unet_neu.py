# ARCD(U-Net) on NEU-Seg; needs work_dirs/arcd_stage1_recon_neu (stage 1) first.
#   tools/mim_train.sh mmseg configs/arcd/arcd_stage2_unet_neu.py
_base_ = ['./_base_/neu_stage2_unet.py']
