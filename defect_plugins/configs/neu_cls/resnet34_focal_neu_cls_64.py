# ResNet34 with mmpretrain's FocalLoss (Lin et al., ICCV 2017; sigmoid form, gamma 2, alpha 0.25, the
# paper's defaults), the second baseline of the imbalanced NEU-CLS benchmark.
_base_ = ['./resnet34_neu_cls_64.py']
model = dict(head=dict(loss=dict(_delete_=True, type='FocalLoss', gamma=2.0, alpha=0.25, loss_weight=1.0)))
