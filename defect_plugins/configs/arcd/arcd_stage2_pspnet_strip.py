# ARCD(PSPNet) on synthetic strips (thesis Table 3.2): mmseg's PSPHead (pyramid pooling 1/2/3/6) on the 6-channel
# ResNetV1c-18 (output stride 8) of arcd_stage2_deeplabv3plus_strip.py; the machine-bed head is kept.
_base_ = ['./arcd_stage2_deeplabv3plus_strip.py']
norm_cfg = dict(type='BN', requires_grad=True)
focal = dict(type='PixelFocalLoss', gamma=2.0, alpha='counts')
model = dict(
    decode_head=dict(_delete_=True, type='PSPHead', in_channels=512, in_index=3, channels=128, pool_scales=(1, 2, 3, 6),
                     dropout_ratio=0.1, num_classes=3, norm_cfg=norm_cfg, align_corners=False, loss_decode=focal))
