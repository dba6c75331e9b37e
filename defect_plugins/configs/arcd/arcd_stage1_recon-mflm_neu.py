# ARCD stage 1 on NEU-Seg with MFLM in the bottleneck.
_base_ = ['./_base_/neu_stage1.py']
model = dict(reconstructor=dict(mflm='mflm'))
