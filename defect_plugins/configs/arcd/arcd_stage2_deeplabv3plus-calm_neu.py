# ARCD(DeepLabV3+) + CALM on NEU-Seg (CALM on the two backbone outputs the head reads).
_base_ = ['./arcd_stage2_deeplabv3plus_neu.py']
model = dict(neck=dict(type='AttentionNeck', in_channels=[64, 128, 256, 512], levels=[0, 3],
                       attention=dict(type='CALM')))
