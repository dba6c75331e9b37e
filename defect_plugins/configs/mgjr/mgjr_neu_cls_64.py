# MGJR stage 2 at 64x64: student + frozen stage-1 teacher, unified loss with AGTS.
#   tools/mim_train.sh mmpretrain configs/mgjr/mgjr_neu_cls_64.py --work-dir work_dirs/mgjr/mgjr_64
# The teacher is the patch-8 ViT (8x8 tokens) of configs/mgjr/vit_teacher_p8_neu_cls_64.py, last checkpoint
# (override with --cfg-options model.teacher_checkpoint=...). Loss weights: task 1.0, each teacher term 0.25
# (teacher terms together = the task's weight; see MGJRClassifier). teacher_min_accuracy is the MGJR student
# alone's measured top-1 on this protocol (96.48 %, mean of 3 seeds, 30 epochs, the balanced 70/30 split;
# MGJR model card, defect_plugins/cls/mgjr/README.md): a teacher below it warns (on_weak_teacher='error' refuses); set it to the
# student-alone accuracy of the protocol you run.
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_64.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', './_base_/mgjr_student.py', './_base_/agts_noise.py']
teacher_config = 'configs/mgjr/vit_teacher_p8_neu_cls_64.py'
teacher_checkpoint = 'work_dirs/mgjr/vit_teacher_p8_64/epoch_100.pth'
model = dict(
    type='MGJRClassifier',
    teacher_config=teacher_config,
    teacher_checkpoint=teacher_checkpoint,
    loss_weights=dict(task=1.0, coarse_feat=0.25, coarse_logit=0.25, anchor_feat=0.25, anchor_logit=0.25),
    temperature=4.0,
    noise={{_base_.agts_noise}},
    projector='linear',
    agts_fraction=1.0,
    split_bn=False,
    distill_on='all',
    teacher_min_accuracy=96.48,
    on_weak_teacher='warn',
)
