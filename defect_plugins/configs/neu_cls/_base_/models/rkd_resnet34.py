# RKD student (RKD-SARSN, Huang et al. 2023): mmpretrain's ResNet34 of resnet34.py, distilled from a
# frozen trained teacher with the RKD distance and angle losses of Park et al. 2019 (weights 25 and 50, as there).
# Each config names its teacher (model.teacher_config + model.teacher_checkpoint). Checkpoints of this model
# hold the student only (keys as a plain ResNet34 ImageClassifier).
_base_ = ['./resnet34.py']
model = dict(
    type='RKDClassifier',
    distance_weight=25.0,
    angle_weight=50.0,
    kd_weight=0.0,  # set > 0 (e.g. 1.0 with temperature=4.0) to add Hinton KD on logits
    temperature=4.0,
)
