# MGJR stage 1 at 224x224 (an input size the abstract does not state; assumed here): ViT teacher, patch 16 ->
# 14x14 tokens. Not trained in this project (CPU budget).
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_224.py',
          './_base_/schedule_adamw_cosine_30e.py', './_base_/vit_teacher.py']
model = dict(backbone=dict(img_size=224))
custom_hooks = [dict(type='EvalInCheckpointHook', metric='accuracy/top1')]
