# SARSN-34 as the paper draws it: the paper stem (Fig. 6, see sarsn34-paperstem_neu_cls_64.py) and, after
# global pooling, a dense layer and the FC classifier with dropout (Fig. 1b), as mmpretrain's own
# StackedLinearClsHead: Linear(512 -> 256), ReLU, Dropout(0.5), Linear(256 -> 6). mmpretrain applies the
# dropout after the dense layer, the paper draws it before; the paper gives neither width nor rate.
_base_ = ['./sarsn34-paperstem_neu_cls_64.py']
model = dict(head=dict(_delete_=True, type='StackedLinearClsHead', num_classes=6, in_channels=512,
                       mid_channels=[256], dropout_rate=0.5,
                       loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
