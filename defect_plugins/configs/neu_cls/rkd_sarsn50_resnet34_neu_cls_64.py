# RKD student: ResNet34 distilled from a trained SARSN-50 teacher, NEU-CLS 64x64, same split and recipe as
# resnet34_neu_cls_64.py (the student alone). Train the teacher first:
#   defect-train mmpretrain configs/neu_cls/sarsn50_neu_cls_64.py --work-dir work_dirs/cls/sarsn50_neu_cls_64
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/rkd_resnet34.py']
model = dict(teacher_config='configs/neu_cls/sarsn50_neu_cls_64.py',
             teacher_checkpoint='work_dirs/cls/sarsn50_neu_cls_64/epoch_30.pth')
