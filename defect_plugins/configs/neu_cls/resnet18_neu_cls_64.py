# mmpretrain's own ResNet18 from scratch on NEU-CLS 64x64 with the strong-baseline recipe
# (the classifier of the few-labels migration experiment, experiments/migration/few_label_migration.py).
_base_ = ['./_base_/runtime.py', './_base_/neu_cls_64.py', './_base_/schedule_sgd_cosine_30e.py',
          './_base_/models/resnet18.py']
