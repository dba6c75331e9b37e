# MGJR with the CNN-teacher option: ResNet34 (configs/mgjr/resnet34_teacher_neu_cls_64.py) instead of the ViT
# (a documented deviation from the paper, whose teacher is a ViT); everything else as mgjr_neu_cls_64.py.
_base_ = ['./mgjr_neu_cls_64.py']
teacher_config = 'configs/mgjr/resnet34_teacher_neu_cls_64.py'
teacher_checkpoint = 'work_dirs/mgjr/resnet34_teacher_64/epoch_60.pth'
model = dict(teacher_config=teacher_config, teacher_checkpoint=teacher_checkpoint)
