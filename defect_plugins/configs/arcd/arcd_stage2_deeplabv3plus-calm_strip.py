# ARCD(DeepLabV3+) + CALM on the two backbone outputs the head reads (levels 0 and 3).
_base_ = ['./arcd_stage2_deeplabv3plus_strip.py']
model = dict(neck=dict(type='AttentionNeck', in_channels=[64, 128, 256, 512], levels=[0, 3],
                       attention=dict(type='CALM')))
