# MGJR stage 2 at 64x64: student + frozen stage-1 teacher, unified loss with AGTS.
#   tools/mim_train.sh mmpretrain configs/mgjr/mgjr_neu_cls_64.py --work-dir work_dirs/mgjr/mgjr_64
# The teacher checkpoint is the last one of stage 1 (override with
#   --cfg-options model.teacher_checkpoint=...).
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_64.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', './_base_/mgjr_student.py']
teacher_config = 'configs/mgjr/vit_teacher_neu_cls_64.py'
teacher_checkpoint = 'work_dirs/mgjr/vit_teacher_64/epoch_30.pth'
model = dict(
    type='MGJRClassifier',
    teacher_config=teacher_config,
    teacher_checkpoint=teacher_checkpoint,
    loss_weights=dict(task=1.0, coarse_feat=1.0, coarse_logit=1.0, anchor_feat=1.0, anchor_logit=1.0),
    temperature=4.0,
    noise=dict(type='AGTSNoise', kinds=('gaussian', 'salt_pepper', 'blur'), gaussian_sigma=(0.02, 0.12),
               sp_amount=(0.01, 0.08), blur_sigma=(0.5, 1.5)),
    projector='linear',
)
