# MGJR stage 1 at 64x64, the teacher the 64x64 MGJR configs use: ViT-tiny (timm) with patch 8 -> 8x8 tokens
# (patch 16 gave 4x4 tokens and a 74 % teacher, below the student). Trained from scratch (no pretrained
# weights offline; never ../shared/weights/, which saw every NEU image):
#   tools/mim_train.sh mmpretrain configs/mgjr/vit_teacher_p8_neu_cls_64.py --work-dir work_dirs/mgjr/vit_teacher_p8_64
# Recipe (the project's, after DeiT, Touvron et al. ICML 2021, scaled to 1260 images): AdamW lr 5e-4 batch 32,
# weight decay 0.05 (none on norms, biases, position embedding, class token), 5 linear warm-up epochs then
# cosine, 100 epochs, drop path 0.1, RandomResizedCrop + flips, label smoothing 0.1. timm's hybrid ViTs were
# checked: vit_tiny_r_s16_p8_224 has stride 32 and gives 2x2 tokens at 64 px, so a plain patch-8 ViT it is.
# EvalInCheckpointHook stores the test top-1 and the split it was measured on in the checkpoint's meta, which
# stage 2 checks against teacher_min_accuracy.
_base_ = ['../neu_cls/_base_/runtime.py', './_base_/neu_cls_64_teacher_aug.py', './_base_/vit_teacher.py']
model = dict(backbone=dict(img_size=64, patch_size=8, drop_path_rate=0.1),
             head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original', loss_weight=1.0)))
max_epochs = 100
warmup_epochs = 5
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05), clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)
custom_hooks = [dict(type='EvalInCheckpointHook', metric='accuracy/top1')]
