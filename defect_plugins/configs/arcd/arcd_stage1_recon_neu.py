# ARCD stage 1 on NEU-Seg, plain reconstructor (see _base_/neu_stage1.py for what "normal" means here).
_base_ = ['./_base_/neu_stage1.py']
