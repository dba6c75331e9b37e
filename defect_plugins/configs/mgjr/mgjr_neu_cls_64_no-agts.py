# Ablation: MGJR without AGTS (no noisy view, no anchor consistency); coarse guidance kept.
_base_ = ['./mgjr_neu_cls_64.py']
model = dict(loss_weights=dict(anchor_feat=0.0, anchor_logit=0.0))
