# ARCD(DeepLabV3+) on NEU-Seg: ResNetV1c-18 with 6 input channels, output stride 8.
_base_ = ['./_base_/neu_stage2_unet.py']
norm_cfg = dict(type='BN', requires_grad=True)
focal = dict(type='PixelFocalLoss', gamma=2.0, alpha='counts')
model = dict(
    backbone=dict(_delete_=True, type='ResNetV1c', in_channels=6, depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False,
                  style='pytorch', contract_dilation=True),
    decode_head=dict(_delete_=True, type='DepthwiseSeparableASPPHead', in_channels=512, in_index=3, channels=128,
                     dilations=(1, 12, 24, 36), c1_in_channels=64, c1_channels=48, dropout_ratio=0.1, num_classes=4,
                     norm_cfg=norm_cfg, align_corners=False, loss_decode=focal))
