# Ablation: MGJR without GL-Attention; IEMA, fusion and AGTS kept.
_base_ = ['./mgjr_neu_cls_64.py']
model = dict(backbone=dict(gl_stages=()))
