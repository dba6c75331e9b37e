# Control: the MGJR student with the AGTS noise module and cross-entropy only (no teacher, no anchor terms):
# loss = CE(clean) + CE(noisy view), the same noise (./_base_/agts_noise.py) and agts_fraction as MGJR.
# MGJR minus this control is what the anchor terms add beyond seeing noisy images.
#   tools/mim_train.sh mmpretrain configs/mgjr/mgjr_student_agts-ce_neu_cls_64.py --work-dir work_dirs/mgjr/agts-ce_64
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_64.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', './_base_/mgjr_student.py', './_base_/agts_noise.py']
model = dict(
    type='NoiseAugClassifier',
    noise={{_base_.agts_noise}},
    loss_weights=dict(task=1.0, noisy_task=1.0),
    agts_fraction=1.0,
    split_bn=False,
)
