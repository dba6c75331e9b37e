# ARCD(U-Net) stage 2 on NEU-Seg (200x200, 3 defect classes, no region map: no region head).
# Schedule sized for a shared 2-core CPU (batch 4, 400 iterations, ~half an epoch, widths from 8); scale it up on a GPU.
# Evaluated on the NEU-Seg test split (447 images).
_base_ = ['./arcd_runtime.py']
data_root = '../shared/data/neu_seg'
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(type='ARCDDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                         bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=8)
focal = dict(type='PixelFocalLoss', gamma=2.0, alpha='counts')  # eps from class counts, thesis eq. 3-16
model = dict(
    type='ARCDSegmentor',
    data_preprocessor=data_preprocessor,
    reconstructor=dict(type='ARCDReconstructor', in_channels=3, base_channels=8, num_stages=4, mflm='none',
                       layout='draem'),
    reconstructor_checkpoint='work_dirs/arcd_stage1_recon_neu',
    backbone=dict(type='UNet', in_channels=6, base_channels=8, num_stages=4, strides=(1, 1, 1, 1),
                  enc_num_convs=(2, 2, 2, 2), dec_num_convs=(2, 2, 2), downsamples=(True, True, True),
                  enc_dilations=(1, 1, 1, 1), dec_dilations=(1, 1, 1), with_cp=False, conv_cfg=None,
                  norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'), upsample_cfg=dict(type='InterpConv'),
                  norm_eval=False),
    decode_head=dict(type='FCNHead', in_channels=8, in_index=3, channels=16, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=4, norm_cfg=norm_cfg, align_corners=False, loss_decode=focal),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackARCDInputs', num_classes=4),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackARCDInputs', num_classes=4),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='NEUSegDataset', data_root=data_root, label_fraction=1.0, subset_seed=0,
                 data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NEUSegDataset', data_root=data_root,
                 data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ClassIoUMetric', iou_metrics=['mIoU']), dict(type='PixelAUROC')]
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=400, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater', interval=400))
