# SARSN34 with mmpretrain's FocalLoss (gamma 2, alpha 0.25), for the imbalanced NEU-CLS benchmark
# next to sarsn34_neu_cls_64.py (cross-entropy) and sarsn34_ial_neu_cls_64.py.
_base_ = ['./sarsn34_neu_cls_64.py']
model = dict(head=dict(loss=dict(_delete_=True, type='FocalLoss', gamma=2.0, alpha=0.25, loss_weight=1.0)))
