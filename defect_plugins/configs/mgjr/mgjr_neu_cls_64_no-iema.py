# Ablation: MGJR with plain basic blocks (no IEMA); GL-Attention, fusion and AGTS kept.
_base_ = ['./mgjr_neu_cls_64.py']
model = dict(backbone=dict(use_iema=False))
