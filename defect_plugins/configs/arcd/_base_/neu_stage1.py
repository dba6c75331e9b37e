# ARCD stage 1 on NEU-Seg (200x200). NEU-Seg has no defect-free images: the stage-1 "normal" set is
# the NEU-Seg *train* images themselves (their real defects included) with simulated anomalies on
# top; the network learns to remove the simulated ones. Validation: 200 NEU-Seg val images (not trained on),
# fixed anomalies. Loss L2 + 0.01 (1 - SSIM) (thesis); DRAEM's layout with 4 blocks (200 px) from width 8.
# Schedule sized for a shared 2-core CPU (batch 4, 400 iterations, widths from 8); scale it up on a GPU.
_base_ = ['./arcd_runtime.py']
data_root = '../shared/data/neu_seg'
texture_dir = None
data_preprocessor = dict(type='ARCDDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                         bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=8)
model = dict(
    type='ARCDReconstructionModel',
    data_preprocessor=data_preprocessor,
    reconstructor=dict(type='ARCDReconstructor', in_channels=3, base_channels=8, num_stages=4, mflm='none',
                       layout='draem'),
    ssim_weight=0.01, self_sup_weight=0.0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='SimulateAnomaly', texture_dir=texture_dir, threshold_range=(0.5, 0.8), beta_range=(0.0, 0.8)),
    dict(type='PackARCDInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SimulateAnomaly', texture_dir=texture_dir, deterministic=True, seed=1),
    dict(type='PackARCDInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='NormalImageDataset', img_suffix='.jpg', data_root=data_root,
                 data_prefix=dict(img_path='img_dir/train'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NormalImageDataset', img_suffix='.jpg', data_root=data_root,
                 data_prefix=dict(img_path='img_dir/val'), indices=200, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ReconstructionAccuracy')
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999)))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[320], gamma=0.2)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(save_best='RA', rule='greater'))
