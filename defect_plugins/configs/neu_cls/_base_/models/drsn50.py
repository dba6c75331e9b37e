# DRSN-CW-50 (Zhao et al., IEEE TII 2020): SARSN's ResNet-50 layout with the plain soft threshold
# (shrinkage='drsn': tau = alpha * mean|x|, no slope), the ablation of the slope delta.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SARSN', depth=50, num_stages=4, out_indices=(3, ), style='pytorch',
                  stem='imagenet', shrinkage='drsn', shrinkage_reduction=16),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)
