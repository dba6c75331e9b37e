# MGJR stage 2 at 224x224 (the student is 20.8 M params / 2.83 GFLOPs here; the paper's 2.86 GFLOPs does not
# state its input size, 224 is this project's assumption). Not trained in this project (CPU budget).
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_224.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', './_base_/mgjr_student.py']
model = dict(
    type='MGJRClassifier',
    teacher_config='configs/mgjr/vit_teacher_neu_cls_224.py',
    teacher_checkpoint='work_dirs/mgjr/vit_teacher_224/epoch_30.pth',
    loss_weights=dict(task=1.0, coarse_feat=0.25, coarse_logit=0.25, anchor_feat=0.25, anchor_logit=0.25),
    temperature=4.0,
    noise=dict(type='AGTSNoise', kinds=('gaussian', 'salt_pepper', 'blur'), gaussian_sigma=(0.02, 0.12),
               sp_amount=(0.01, 0.08), blur_sigma=(0.5, 2.0)),
    projector='linear',
)
