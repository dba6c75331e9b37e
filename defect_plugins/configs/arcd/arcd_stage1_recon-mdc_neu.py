# ARCD stage 1 on NEU-Seg, masked dilated convolution alone in the bottleneck (thesis ablation).
_base_ = ['./_base_/neu_stage1.py']
model = dict(reconstructor=dict(mflm='mdc'))
