# SARSN-50 (teacher) on NEU-CLS 224x224, same split and recipe as resnet34_neu_cls_224.py.
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_224.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/sarsn50.py']
