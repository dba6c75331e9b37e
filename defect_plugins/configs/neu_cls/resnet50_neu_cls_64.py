# Ablation baseline: mmpretrain's own ResNet50 from scratch on NEU-CLS 64x64, same split and recipe as
# resnet34_neu_cls_64.py (the depth-50 row of the paper's ResNet / SE-ResNet / SARSN comparison, Fig. 15).
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/resnet50.py']
