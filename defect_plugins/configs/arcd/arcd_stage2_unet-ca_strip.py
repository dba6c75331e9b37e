# Ablation (thesis Table 4.3): ARCD(U-Net) with coordinate attention (CA) alone where
# arcd_stage2_unet-calm_strip.py puts CALM (the U-Net output both heads read, AttentionNeck level 4).
_base_ = ['./_base_/strip_stage2_unet.py']
model = dict(neck=dict(type='AttentionNeck', in_channels=[256, 128, 64, 32, 16], levels=[4],
                       attention=dict(type='CoordAttention')))
