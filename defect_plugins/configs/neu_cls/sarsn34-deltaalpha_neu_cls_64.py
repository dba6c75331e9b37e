# Ablation: SARSN-34 with the "delta = alpha" reading of the threshold (the slope is the SE excitation:
# y = alpha * soft(x, alpha * mean|x|)), NEU-CLS 64x64, same split and recipe as sarsn34_neu_cls_64.py.
_base_ = ['./sarsn34_neu_cls_64.py']
model = dict(backbone=dict(shrinkage='delta_alpha'))
