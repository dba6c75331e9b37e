# Baseline for ARCD(U-Net) on NEU-Seg: the same U-Net, head, loss, pipeline and schedule, image only
# (3 input channels, stock mmseg EncoderDecoder, no reconstruction input).
_base_ = ['./_base_/neu_stage2_unet.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor=dict(type='ARCDDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                           bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=8),
    backbone=dict(type='UNet', in_channels=3, base_channels=8, num_stages=4, strides=(1, 1, 1, 1),
                  enc_num_convs=(2, 2, 2, 2), dec_num_convs=(2, 2, 2), downsamples=(True, True, True),
                  enc_dilations=(1, 1, 1, 1), dec_dilations=(1, 1, 1), with_cp=False, conv_cfg=None,
                  norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'), upsample_cfg=dict(type='InterpConv'),
                  norm_eval=False),
    decode_head=dict(type='FCNHead', in_channels=8, in_index=3, channels=16, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=4, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='PixelFocalLoss', gamma=2.0, alpha='counts')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
