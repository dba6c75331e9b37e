# Ablation: DRSN-CW-34 (soft threshold, no slope) on NEU-CLS 64x64, same split and recipe as resnet34_neu_cls_64.py.
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/drsn34.py']
