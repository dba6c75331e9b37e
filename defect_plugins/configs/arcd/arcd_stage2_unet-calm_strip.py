# ARCD(U-Net) + CALM on the U-Net output used by both heads (AttentionNeck, level 4).
_base_ = ['./_base_/strip_stage2_unet.py']
model = dict(neck=dict(type='AttentionNeck', in_channels=[256, 128, 64, 32, 16], levels=[4],
                       attention=dict(type='CALM')))
