# ARCD stage 1 on NEU-Seg, "Base + MDC" (thesis Table 4.2): SSPCAB's block (masked convolution k=3, d=1 + SE
# gate, reduction 8) in place of the second 3x3 convolution of every encoder block.
_base_ = ['./_base_/neu_stage1.py']
model = dict(reconstructor=dict(mflm='mdc', mflm_cfg=dict(kernel_size=3, dilation=1, attention='se', se_reduction=8)))
