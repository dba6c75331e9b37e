# ResNet34 with the imbalance-adaptive loss (RKD-SARSN paper, Eqs. 12-17): the loss of
# sarsn34_ial_neu_cls_64.py on the plain ResNet34 baseline, for the imbalanced NEU-CLS benchmark
# (defect-cls-split --train-counts 210 140 90 60 35 21 --test-count 90).
_base_ = ['./resnet34_neu_cls_64.py']
model = dict(head=dict(loss=dict(_delete_=True, type='ImbalanceAdaptiveLoss', num_classes=6,
                                 imbalance_ratio=None, k_mode='per_class', weight_offset=1.0,
                                 beta=0.1, mse_weight=1.0)))
custom_hooks = [dict(type='ImbalanceAdaptiveWeightHook', interval=1, by_epoch=True)]
