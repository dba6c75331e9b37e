# ARCD stage 1 on the synthetic strip data (defect_plugins.data.make_segmentation_dataset):
# reconstruction network trained on defect-free strips with simulated anomalies (thesis section 3.3,
# synthesis 3.3.1 / eq. 3-1), loss L2 + 0.01 (1 - SSIM). normal_dir is split: 80 % to train on, 20 % held
# out for validation (RA on normal strips the network did not see; split_seed fixes which).
# Make the data with:  defect-synth seg work_dirs/seg/data/strip
_base_ = ['./arcd_runtime.py']
data_root = 'work_dirs/seg/data/strip'
scale = 256          # wide strips are padded to a square, then resized (thesis: 2560 -> 256)
texture_dir = None   # a texture folder (e.g. DTD, as DRAEM; the thesis names none); None = procedural textures
data_preprocessor = dict(type='ARCDDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                         bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=16)
model = dict(
    type='ARCDReconstructionModel',
    data_preprocessor=data_preprocessor,
    # DRAEM's layout (thesis Table 4.2) at width 32 for CPU runs (the thesis: base_channels=128)
    reconstructor=dict(type='ARCDReconstructor', in_channels=3, base_channels=32, num_stages=5, mflm='none',
                       layout='draem'),
    ssim_weight=0.01, self_sup_weight=0.0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PadSquareResize', scale=scale),
    dict(type='RandomFlip', prob=0.5),
    # anomalies only inside the real strip, not in the square padding (eq. 3-1's crop to I_A, P_A)
    dict(type='SimulateAnomaly', texture_dir=texture_dir, threshold_range=(0.5, 0.8), beta_range=(0.0, 0.8),
         crop_to_image=True),
    dict(type='PackARCDInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PadSquareResize', scale=scale),
    dict(type='SimulateAnomaly', texture_dir=texture_dir, deterministic=True, seed=1, crop_to_image=True),
    dict(type='PackARCDInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='NormalImageDataset', data_root=data_root, data_prefix=dict(img_path='normal_dir'),
                 split='train', val_fraction=0.2, split_seed=0, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NormalImageDataset', data_root=data_root, data_prefix=dict(img_path='normal_dir'),
                 split='val', val_fraction=0.2, split_seed=0, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ReconstructionAccuracy')
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999)))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[1600], gamma=0.2)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(save_best='RA', rule='greater'))
