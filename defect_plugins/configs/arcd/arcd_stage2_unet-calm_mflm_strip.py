# Full thesis method on synthetic strips: MFLM reconstructor (stage 1: arcd_stage1_recon-mflm_strip.py)
# + U-Net discriminator with CALM.
_base_ = ['./arcd_stage2_unet-calm_strip.py']
model = dict(reconstructor=dict(mflm='mflm'), reconstructor_checkpoint='work_dirs/arcd_stage1_recon-mflm_strip')
