# RKD student lighter than the paper's: mmpretrain ResNet18 distilled from a trained SARSN-50 teacher.
# Everything but the student's depth is rkd_sarsn50_resnet34_neu_cls_64.py (teacher, RKD weights, split, recipe);
# its student-alone row is resnet18_neu_cls_64.py.
_base_ = ['./rkd_sarsn50_resnet34_neu_cls_64.py']
model = dict(backbone=dict(depth=18))
