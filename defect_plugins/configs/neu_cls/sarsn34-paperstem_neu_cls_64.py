# SARSN-34 with the paper's stem (Huang et al. 2023, Fig. 6): 3x3 stride-1 convolution, no max-pool,
# stage strides (1, 2, 2, 1), so a 64x64 input stays 64x64x64 after the stem and ends at 512x16x16
# (the ImageNet stem ends at 2x2). Same split and recipe as sarsn34_neu_cls_64.py; many times the FLOPs
# of the ImageNet stem (experiments/neu_cls/sarsn_complexity.py), so budget the CPU time before running it.
_base_ = ['./sarsn34_neu_cls_64.py']
model = dict(backbone=dict(stem='paper'))
