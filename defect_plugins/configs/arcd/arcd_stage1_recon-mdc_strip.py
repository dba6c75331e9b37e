# ARCD stage 1, masked dilated convolution alone in the bottleneck (thesis ablation, Table 4.2).
_base_ = ['./_base_/strip_stage1.py']
model = dict(reconstructor=dict(mflm='mdc'))
