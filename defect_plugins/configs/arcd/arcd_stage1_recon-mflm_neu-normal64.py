# ARCD stage 1 "Base + MFLM" (thesis Table 4.2) on the genuine normal NEU-Seg patches:
# the patches of arcd_stage1_recon_neu-normal64.py, the MFLM block of arcd_stage1_recon-mflm_neu.py.
_base_ = ['./arcd_stage1_recon_neu-normal64.py']
model = dict(reconstructor=dict(mflm='mflm', mflm_cfg=dict(kernel_size=1, dilation=1, attention='transformer',
                                                        token_dim=64, num_heads=5, head_dim=64, num_layers=1)))
