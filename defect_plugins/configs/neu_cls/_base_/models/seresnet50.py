# SE-ResNet-50 (Hu et al., CVPR 2018): mmpretrain's own SEResNet, ImageNet stem, 6 NEU-CLS classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SEResNet', depth=50, se_ratio=16, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)
