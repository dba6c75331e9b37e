# Baseline: mmpretrain's own ResNet34 from scratch on NEU-CLS 64x64 (the paper's ResNet34: 88.62%).
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/resnet34.py']
