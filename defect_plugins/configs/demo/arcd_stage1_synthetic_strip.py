# ARCD stage 1 for the README demo (defect-demo): the strip recipe of ../arcd/ at 128 px with a short,
# constant-lr schedule. The demo passes the data folder:
#   --cfg-options train_dataloader.dataset.data_root=D val_dataloader.dataset.data_root=D test_dataloader...
_base_ = ['../arcd/arcd_stage1_recon_strip.py']
scale = 128  # the synthetic strips are 64 x 128: padded to a square, nothing is lost at 128
# The demo keeps the recipe its targets were measured with (docs/RESULTS.md#readme-demo), from before
# the packaged ARCD configs moved to the thesis' settings: the compact reconstructor (65.8 M at
# width 128 vs DRAEM's 69.0 M layout; cheaper per pixel on the demo's CPU budget), the 1/200 SSIM weight,
# anomalies pasted after padding, and validation on the training strips (the demo validates once, at the end).
model = dict(reconstructor=dict(layout='compact'), ssim_weight=0.005, self_sup_weight=0.1)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PadSquareResize', scale=scale),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SimulateAnomaly', texture_dir=None, threshold_range=(0.5, 0.8), beta_range=(0.0, 0.8),
         crop_to_image=False),
    dict(type='PackARCDInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PadSquareResize', scale=scale),
    dict(type='SimulateAnomaly', texture_dir=None, deterministic=True, seed=1, crop_to_image=False),
    dict(type='PackARCDInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, split='all'))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline, split='all'))
test_dataloader = val_dataloader
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
# validate and save once, at the end (IterBasedTrainLoop always validates the last iteration)
train_cfg = dict(max_iters=150, val_interval=1000000)
default_hooks = dict(checkpoint=dict(interval=1000000, save_last=True, max_keep_ckpts=1),
                     logger=dict(interval=25))
# bf16 autocast where the CPU computes bf16 natively (defect_plugins.engine.autocast), float32 elsewhere
optim_wrapper = dict(type='AutocastOptimWrapper', enabled='auto')
