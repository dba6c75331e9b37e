# MGJR stage 1 at 64x64, the first (weak) teacher, kept to reproduce the runs recorded in docs/RESULTS.md:
#   tools/mim_train.sh mmpretrain configs/mgjr/vit_teacher_neu_cls_64.py --work-dir work_dirs/mgjr/vit_teacher_64
# Patch 16 -> 4x4 tokens, 30 epochs, flips only: 74.4 % after 10 epochs, below the student alone. The 64x64 MGJR
# configs now use configs/mgjr/vit_teacher_p8_neu_cls_64.py (8x8 tokens, 100 epochs, stronger augmentation).
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_64.py', './_base_/schedule_adamw_cosine_30e.py',
          './_base_/vit_teacher.py']
model = dict(backbone=dict(img_size=64, patch_size=16, drop_path_rate=0.0))
custom_hooks = [dict(type='EvalInCheckpointHook', metric='accuracy/top1')]
