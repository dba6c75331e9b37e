# SARSN-34 with the paper's data enhancement and preprocessing, NEU-CLS 64x64:
# bilateral filter + histogram contrast stretch on every image (train and test), and
# same-class mosaic (2x2, median-blurred seams) on half of the training samples.
_base_ = ['./sarsn34_neu_cls_64.py']
load_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='SteelBilateralFilter', diameter=5, sigma_color=50.0, sigma_space=50.0),
    dict(type='HistogramContrastStretch', low=1.0, high=99.0),
]
train_pipeline = [
    dict(type='Resize', scale=(64, 64)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackInputs'),
]
test_pipeline = load_pipeline + [dict(type='Resize', scale=(64, 64)), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='SameClassMosaicDataset',
    prob=0.5,
    dataset=dict(type='NEUCLSDataset', data_root='', data_prefix='../shared/data/neu_cls',
                 ann_file='work_dirs/cls/neu_cls_split/train.txt', pipeline=load_pipeline),
    pipeline=train_pipeline,
))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
