# RKD student lighter than the paper's: mmpretrain ResNet18 distilled from a trained SARSN-34 teacher
# (RKD-SARSN, Huang et al. 2023, distils into ResNet34). Everything but the student's depth is
# rkd_sarsn34_resnet34_neu_cls_64.py (teacher, RKD weights, split, recipe); its student-alone row is
# resnet18_neu_cls_64.py. Checkpoints hold the student only (keys as a plain ResNet18 ImageClassifier).
_base_ = ['./rkd_sarsn34_resnet34_neu_cls_64.py']
model = dict(backbone=dict(depth=18))
