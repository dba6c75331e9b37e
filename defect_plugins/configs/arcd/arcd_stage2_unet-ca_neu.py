# Ablation (thesis Table 4.3): ARCD(U-Net) with coordinate attention (CA) alone where
# arcd_stage2_unet-calm_neu.py puts CALM (the U-Net output the head reads).
_base_ = ['./_base_/neu_stage2_unet.py']
model = dict(neck=dict(type='AttentionNeck', in_channels=[64, 32, 16, 8], levels=[3],
                       attention=dict(type='CoordAttention')))
