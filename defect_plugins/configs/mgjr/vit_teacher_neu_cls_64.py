# MGJR stage 1 at 64x64: fine-tune the ViT teacher on NEU-CLS.
#   tools/mim_train.sh mmpretrain configs/mgjr/vit_teacher_neu_cls_64.py --work-dir work_dirs/mgjr/vit_teacher_64
# Patch 16 -> 4x4 tokens: a deliberately coarse, global view (the teacher's role in MGJR) that is cheap
# enough for the 2-core CPU; use patch_size=8 (8x8 tokens) where compute allows.
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_64.py', './_base_/schedule_adamw_cosine_30e.py',
          './_base_/vit_teacher.py']
model = dict(backbone=dict(img_size=64, patch_size=16, drop_path_rate=0.0))
