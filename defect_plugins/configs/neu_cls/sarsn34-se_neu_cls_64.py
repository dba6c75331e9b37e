# Ablation: SARSN-34 with explicit SE re-weighting (the paper's Eqs. 5-7, own FC pair) before the
# self-adaptive threshold (Eqs. 10-11), NEU-CLS 64x64, same split and recipe as sarsn34_neu_cls_64.py.
_base_ = ['./sarsn34_neu_cls_64.py']
model = dict(backbone=dict(shrinkage='sarsn_se'))
