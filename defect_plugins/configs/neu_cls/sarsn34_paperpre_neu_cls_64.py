# SARSN-34 with the paper's image preprocessing only (RKD-SARSN, Huang et al. 2023, Sec. 3.1): bilateral filter +
# histogram contrast stretch on every image (train and test), no sample mixing; otherwise the recipe of
# sarsn34_neu_cls_64.py. With sarsn34_paperaug_neu_cls_64.py (preprocessing + mosaic + fusion) it splits the
# paper's data enhancement into its two parts.
_base_ = ['./sarsn34_neu_cls_64.py']
load_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='SteelBilateralFilter', diameter=5, sigma_color=50.0, sigma_space=50.0),
    dict(type='HistogramContrastStretch', low=1.0, high=99.0),
]
# what follows loading in sarsn34_neu_cls_64.py's training pipeline (the paperaug config applies it after mixing)
augment_pipeline = [
    dict(type='Resize', scale=(64, 64)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackInputs'),
]
train_pipeline = load_pipeline + augment_pipeline
test_pipeline = load_pipeline + [dict(type='Resize', scale=(64, 64)), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
