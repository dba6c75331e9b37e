# SARSN-34 (defect_plugins.cls.backbones.sarsn): ResNet-34 layout with self-adaptive shrinkage units.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SARSN', depth=34, num_stages=4, out_indices=(3, ), style='pytorch',
                  stem='imagenet', shrinkage='sarsn', shrinkage_reduction=16),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)
