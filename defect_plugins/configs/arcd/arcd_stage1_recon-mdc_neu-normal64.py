# ARCD stage 1 "Base + MDC" (thesis Table 4.2) on the genuine normal NEU-Seg patches:
# the patches of arcd_stage1_recon_neu-normal64.py, the MDC block of arcd_stage1_recon-mdc_neu.py.
_base_ = ['./arcd_stage1_recon_neu-normal64.py']
model = dict(reconstructor=dict(mflm='mdc', mflm_cfg=dict(kernel_size=3, dilation=1, attention='se', se_reduction=8)))
