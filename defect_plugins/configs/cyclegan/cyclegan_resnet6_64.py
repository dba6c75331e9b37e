# CycleGAN defect-sample migration (RKD-SARSN, Huang et al. 2023, section 2.1; Zhu et al., ICCV 2017):
# domain A = the line whose defects are labelled, domain B = the new line (unlabelled images are enough).
# Zhu et al.'s networks and losses at 64 px: ResNet generator c7s1-64, d128, d256, R256 x 6, u128, u64,
# c7s1-3 (6 blocks, the paper's choice below 256 px), 70x70 PatchGAN, LSGAN + cycle (10) + identity (5),
# Adam 2e-4 / (0.5, 0.999), batch 1, 50-image history pools, constant lr then linear decay to 0.
# Set the folders (and keep the schedule consistent with max_iters) with `defect-migrate train`, or:
#   defect-train mmpretrain cyclegan/cyclegan_resnet6_64.py --work-dir work_dirs/cyclegan \
#     --cfg-options train_dataloader.dataset.root_a=A_DIR train_dataloader.dataset.root_b=B_DIR
# (source_dir / target_dir below are read when this file is parsed; overriding them later changes nothing.)
default_scope = 'mmpretrain'
custom_imports = dict(imports=['defect_plugins.gan'], allow_failed_imports=False)

img_size = 64
max_iters = 20000
source_dir = 'data/migrate/source'  # domain A
target_dir = 'data/migrate/target'  # domain B

model = dict(
    type='CycleGAN',
    generator=dict(base_channels=64, num_blocks=6),
    discriminator=dict(base_channels=64, num_layers=3),
    adversarial_weight=1.0,
    cycle_weight=10.0,
    identity_weight=5.0,  # Zhu et al.: 0.5 * cycle weight
    pool_size=50,
)

train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    dataset=dict(type='UnpairedImageDataset', root_a=source_dir, root_b=target_dir, img_size=img_size),
    sampler=dict(type='InfiniteSampler', shuffle=True),
)

optim_wrapper = dict(
    constructor='SubmoduleOptimWrapperConstructor',
    generators=dict(optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))),
    discriminators=dict(optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))),
)
# Zhu et al.: constant learning rate for the first half, then linearly to 0 (applied to both optimizers).
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=max_iters // 2, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
val_cfg = None
val_dataloader = None
val_evaluator = None

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [dict(type='CycleGANSampleHook', interval=1000, num_samples=6)]
log_processor = dict(by_epoch=False)

env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0, deterministic=False)
log_level = 'INFO'
load_from = None
resume = False
