# SE-ResNet-34 (Hu et al., CVPR 2018): mmpretrain's SEResNet with basic units (SEResNetBasic,
# defect_plugins.cls.backbones.seresnet_basic; mmpretrain's SEResNet has depths 50/101/152 only),
# mmpretrain's SELayer after the last BN of each unit, ImageNet stem, 6 NEU-CLS classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SEResNetBasic', depth=34, se_ratio=16, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)
