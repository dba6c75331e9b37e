# RKD ResNet-18 student of the SARSN-18 teacher (sarsn18_synthetic_cls.py) for the README demo:
# the RKD-SARSN distillation of ../neu_cls/rkd_sarsn34_resnet34_neu_cls_64.py (distance weight 25,
# angle weight 50, cross-entropy on the labels), same data, schedule and optimiser as the teacher.
# The demo passes the data paths and model.teacher_checkpoint=<teacher's epoch_N.pth>.
_base_ = ['./sarsn18_synthetic_cls.py']
model = dict(
    _delete_=True,
    type='RKDClassifier',
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
    teacher_config='configs/demo/sarsn18_synthetic_cls.py',
    teacher_checkpoint='work_dirs/demo/sarsn18_teacher/epoch_20.pth',
    distance_weight=25.0,
    angle_weight=50.0,
    kd_weight=0.0,
    temperature=4.0,
)
