# The MGJR student (MGJRStudent: ResNet-style CNN + IEMA + GL-Attention + multi-scale fusion) as a plain
# ImageClassifier; the MGJR configs turn it into an MGJRClassifier with a teacher.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MGJRStudent', depths=(1, 3, 4, 3), widths=(64, 128, 256, 512), use_iema=True,
                  gl_stages=(2, 3), fuse_stages=(1, 2)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)
