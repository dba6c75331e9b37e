# The MGJR student alone (no teacher, no AGTS), same recipe as the ResNet34 baseline. Also the config the
# student of any MGJR checkpoint is tested / exported with (defect-export classifier --config THIS --checkpoint CKPT).
_base_ = ['../neu_cls/_base_/runtime.py', '../neu_cls/_base_/neu_cls_64.py',
          '../neu_cls/_base_/schedule_sgd_cosine_30e.py', './_base_/mgjr_student.py']
