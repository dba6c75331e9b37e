# Baseline ResNet34 on NEU-CLS 224x224.
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_224.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/resnet34.py']
