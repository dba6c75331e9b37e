# MGJR stage 2 at 224x224 (the paper's setting; the student is 20.8 M params / 2.83 GFLOPs here).
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_224.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', './_base_/mgjr_student.py']
model = dict(
    type='MGJRClassifier',
    teacher_config='configs/mgjr/vit_teacher_neu_cls_224.py',
    teacher_checkpoint='work_dirs/mgjr/vit_teacher_224/epoch_30.pth',
    loss_weights=dict(task=1.0, coarse_feat=1.0, coarse_logit=1.0, anchor_feat=1.0, anchor_logit=1.0),
    temperature=4.0,
    noise=dict(type='AGTSNoise', kinds=('gaussian', 'salt_pepper', 'blur'), gaussian_sigma=(0.02, 0.12),
               sp_amount=(0.01, 0.08), blur_sigma=(0.5, 2.0)),
    projector='linear',
)
