# Stage-1 teacher: a timm ViT (random init offline; set weights='file.pth' or pretrained=True online).
teacher_arch = 'vit_tiny_patch16_224'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TimmViT', arch=teacher_arch, img_size=224, patch_size=None, weights=None, pretrained=False,
                  drop_path_rate=0.1),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=6, in_channels=192,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)
