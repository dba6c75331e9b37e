# ARCD stage 2 for the README demo (defect-demo): U-Net discriminator on image + reconstruction, with the
# machine-bed region head, at 128 px, short poly schedule. The demo passes the data folder and
#   model.reconstructor_checkpoint=<stage-1 work dir>
_base_ = ['../arcd/arcd_stage2_unet_strip.py']
scale = 128
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
    dict(type='LoadAnnotations'),
    dict(type='LoadRegionMap'),
    dict(type='PackARCDInputs', num_classes=3),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 300
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=1000000)
default_hooks = dict(checkpoint=dict(interval=1000000, save_last=True, max_keep_ckpts=1, save_best=None),
                     logger=dict(interval=25))
