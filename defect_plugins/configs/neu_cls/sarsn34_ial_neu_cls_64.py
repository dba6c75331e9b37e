# SARSN-34 with the imbalance-adaptive loss (class weights from G-mean and accuracy, updated every
# epoch by ImbalanceAdaptiveWeightHook from the running confusion counts), NEU-CLS 64x64.
# K_c = n_max / n_c per class, n_c counted by the hook on the training set (k_mode='global': one
# K = n_max / n_min for every class, the first reading); on the balanced 70/30 split every K_c is 1.
_base_ = ['./sarsn34_neu_cls_64.py']
model = dict(head=dict(loss=dict(_delete_=True, type='ImbalanceAdaptiveLoss', num_classes=6,
                                 imbalance_ratio=None, k_mode='per_class', weight_offset=1.0,
                                 beta=0.1, mse_weight=1.0)))
custom_hooks = [dict(type='ImbalanceAdaptiveWeightHook', interval=1, by_epoch=True)]
