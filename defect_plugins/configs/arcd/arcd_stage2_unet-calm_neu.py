# ARCD(U-Net) + CALM on NEU-Seg (CALM on the U-Net output the head reads).
_base_ = ['./_base_/neu_stage2_unet.py']
model = dict(neck=dict(type='AttentionNeck', in_channels=[64, 32, 16, 8], levels=[3],
                       attention=dict(type='CALM')))
