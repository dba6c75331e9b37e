# Ablation baseline: SE-ResNet-50 on NEU-CLS 64x64, same split and recipe as resnet34_neu_cls_64.py
# (the paper's SE-ResNet / SARSN comparison, Huang et al. 2023, Fig. 15).
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/seresnet50.py']
