# RKD student: ResNet34 distilled from a trained SARSN-101 teacher, NEU-CLS 224x224, same split and recipe as
# resnet34_neu_cls_224.py (the student alone). Train the teacher first:
#   defect-train mmpretrain configs/neu_cls/sarsn101_neu_cls_224.py --work-dir work_dirs/cls/sarsn101_neu_cls_224
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_224.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/rkd_resnet34.py']
model = dict(teacher_config='configs/neu_cls/sarsn101_neu_cls_224.py',
             teacher_checkpoint='work_dirs/cls/sarsn101_neu_cls_224/epoch_30.pth')
