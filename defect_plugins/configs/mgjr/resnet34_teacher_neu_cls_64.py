# MGJR stage 1, CNN-teacher option (a deviation from the paper's ViT teacher, for when no ViT trained from
# scratch on this budget beats the student alone): mmpretrain's ResNet34 at 64x64, the project's SGD recipe
# (lr 0.05, momentum 0.9, wd 5e-4, 2 warm-up epochs then cosine) for 60 epochs, with the teachers' augmentation
# (RandomResizedCrop + flips) and label smoothing 0.1; test top-1 stored in the checkpoint's meta.
#   tools/mim_train.sh mmpretrain configs/mgjr/resnet34_teacher_neu_cls_64.py \
#       --work-dir work_dirs/mgjr/resnet34_teacher_64
_base_ = ['../neu_cls/_base_/runtime.py', './_base_/neu_cls_64_teacher_aug.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', '../neu_cls/_base_/models/resnet34.py']
model = dict(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original', loss_weight=1.0)))
max_epochs = 60
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, eta_min=0.0, by_epoch=True, begin=2, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
custom_hooks = [dict(type='EvalInCheckpointHook', metric='accuracy/top1')]
