# RKD student lighter than the paper's: mmpretrain ResNet18 distilled from a trained SARSN-34 teacher
# (RKD-SARSN, Huang et al. 2023, distils into ResNet34; RKD losses of Park et al. 2019, distance weight 25,
# angle weight 50), NEU-CLS 64x64, same split and recipe as resnet18_neu_cls_64.py (its student-alone row).
# Train the teacher first:
#   tools/mim_train.sh mmpretrain configs/neu_cls/sarsn34_neu_cls_64.py --work-dir work_dirs/cls/sarsn34_neu_cls_64
# Checkpoints of this model hold the student only (keys as a plain ResNet18 ImageClassifier).
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/resnet18.py']
teacher_config = 'configs/neu_cls/sarsn34_neu_cls_64.py'
teacher_checkpoint = 'work_dirs/cls/sarsn34_neu_cls_64/epoch_30.pth'
model = dict(
    type='RKDClassifier',
    teacher_config=teacher_config,
    teacher_checkpoint=teacher_checkpoint,
    distance_weight=25.0,
    angle_weight=50.0,
    kd_weight=0.0,  # set > 0 (e.g. 1.0 with temperature=4.0) to add Hinton KD on logits
    temperature=4.0,
)
