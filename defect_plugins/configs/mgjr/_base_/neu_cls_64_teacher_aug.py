# NEU-CLS 64x64 data for the stage-1 teachers: the shared split and test pipeline, a stronger training
# augmentation (mmpretrain's RandomResizedCrop keeping 35-100 % of the image area, horizontal and vertical
# flips). The 35 % floor instead of the ImageNet 8 % is the project's choice: NEU defects (inclusions, pits)
# can be small, and a 64 px crop of 8 % of a 200 px image may miss them.
_base_ = ['../../neu_cls/_base_/neu_cls_64.py']
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.35, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
