# SARSN-34 with the paper's data enhancement and preprocessing (RKD-SARSN, Huang et al. 2023, Sec. 3.1),
# NEU-CLS 64x64, otherwise the recipe of sarsn34_neu_cls_64.py (its "off" row):
# - bilateral filter + histogram contrast stretch on every image (train and test), as sarsn34_paperpre_neu_cls_64.py;
# - same-class image mosaic (2x2, median-blurred seams) on half of the training samples,
#   then same-class image fusion (lam in [0.3, 0.7]) on half of what that gives.
# The paper states neither probability; 0.5 each is this project's choice.
_base_ = ['./sarsn34_paperpre_neu_cls_64.py']
load_pipeline = {{_base_.load_pipeline}}
train_pipeline = {{_base_.augment_pipeline}}
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='SameClassFusionDataset',
    prob=0.5,
    lam_range=(0.3, 0.7),
    # the inner wrapper hands its (possibly mosaicked) images on unpacked: an empty pipeline
    dataset=dict(
        type='SameClassMosaicDataset',
        prob=0.5,
        pipeline=[],
        dataset=dict(type='NEUCLSDataset', data_root='', data_prefix='../shared/data/neu_cls',
                     ann_file='work_dirs/cls/neu_cls_split/train.txt', pipeline=load_pipeline),
    ),
    pipeline=train_pipeline,
))
