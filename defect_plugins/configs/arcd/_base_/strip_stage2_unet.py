# ARCD stage 2 on the synthetic strip data: frozen stage-1 reconstructor + 6-channel U-Net
# discriminator (focal loss, eps from class counts: thesis eq. 3-16) + machine-bed region head (thesis 3.3, Table 3.2).
_base_ = ['./arcd_runtime.py']
data_root = 'work_dirs/seg/data/strip'
scale = 256
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(type='ARCDDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                         bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=16)
focal = dict(type='PixelFocalLoss', gamma=2.0, alpha='counts')
model = dict(
    type='ARCDSegmentor',
    data_preprocessor=data_preprocessor,
    # must equal the stage-1 config's reconstructor
    reconstructor=dict(type='ARCDReconstructor', in_channels=3, base_channels=32, num_stages=5, mflm='none',
                       layout='draem'),
    # stage-1 work dir (its last_checkpoint) or a .pth file
    reconstructor_checkpoint='work_dirs/arcd_stage1_recon_strip',
    backbone=dict(type='UNet', in_channels=6, base_channels=16, num_stages=5, strides=(1, 1, 1, 1, 1),
                  enc_num_convs=(2, 2, 2, 2, 2), dec_num_convs=(2, 2, 2, 2), downsamples=(True, True, True, True),
                  enc_dilations=(1, 1, 1, 1, 1), dec_dilations=(1, 1, 1, 1), with_cp=False, conv_cfg=None,
                  norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'), upsample_cfg=dict(type='InterpConv'),
                  norm_eval=False),
    decode_head=dict(type='FCNHead', in_channels=16, in_index=4, channels=16, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=3, norm_cfg=norm_cfg, align_corners=False, loss_decode=focal),
    region_head=dict(type='FCNHead', in_channels=16, in_index=4, channels=16, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=2, norm_cfg=norm_cfg, align_corners=False, loss_decode=focal),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='LoadRegionMap'),
    dict(type='PadSquareResize', scale=scale),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackARCDInputs', num_classes=3),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PadSquareResize', scale=scale),
    # labels after the resize: evaluated at the original resolution
    dict(type='LoadAnnotations'),
    dict(type='LoadRegionMap'),
    dict(type='PackARCDInputs', num_classes=3),
]
dataset = dict(type='ARCDStripDataset', data_root=data_root)
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train',
                                           region_path='region_dir/train'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val',
                                           region_path='region_dir/val'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ClassIoUMetric', iou_metrics=['mIoU']), dict(type='PixelAUROC'),
                 dict(type='RegionIoUMetric', iou_metrics=['mIoU']),
                 dict(type='PixelAUROC', pred_key='region_logits', gt_key='gt_region_map',
                      class_names=('not_bed', 'machine_bed'), prefix='region')]
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=2000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater'))
