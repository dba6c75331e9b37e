# Full thesis method on NEU-Seg: MFLM reconstructor (arcd_stage1_recon-mflm_neu.py) + U-Net with CALM.
_base_ = ['./arcd_stage2_unet-calm_neu.py']
model = dict(reconstructor=dict(mflm='mflm'), reconstructor_checkpoint='work_dirs/arcd_stage1_recon-mflm_neu')
