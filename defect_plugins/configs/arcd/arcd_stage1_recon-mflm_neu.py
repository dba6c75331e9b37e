# ARCD stage 1 on NEU-Seg, "Base + MFLM" (thesis Table 4.2): masked convolution k=1, d=1 + channel transformer
# (64-dim tokens, 5 heads x 64, 1 layer) in place of the second 3x3 convolution of every encoder block.
_base_ = ['./_base_/neu_stage1.py']
model = dict(reconstructor=dict(mflm='mflm', mflm_cfg=dict(kernel_size=1, dilation=1, attention='transformer',
                                                        token_dim=64, num_heads=5, head_dim=64, num_layers=1)))
