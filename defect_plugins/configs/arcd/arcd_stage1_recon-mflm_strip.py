# ARCD stage 1 with MFLM (masked dilated conv k=3 d=1 + channel transformer 5 heads x 64, 1 layer).
_base_ = ['./_base_/strip_stage1.py']
model = dict(reconstructor=dict(mflm='mflm'))
