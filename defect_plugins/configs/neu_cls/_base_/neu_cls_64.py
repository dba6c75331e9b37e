# NEU-CLS at 64x64 (the RKD-SARSN paper's input size), fixed stratified 70/30 split, seed 0.
# Write the split first:  defect-cls-split ../shared/data/neu_cls --out work_dirs/cls/neu_cls_split
# Paths are relative to the project root (where tools/mim_train.sh is run). mmengine substitutes the variables
# below when it parses this file, so `--cfg-options data_prefix=...` changes nothing; override each loader:
#   --cfg-options train_dataloader.dataset.data_prefix=DIR val_dataloader.dataset.data_prefix=DIR
#     test_dataloader.dataset.data_prefix=DIR (and .ann_file=SPLIT/train.txt / SPLIT/test.txt).
# These configs are the NEU-CLS study (six classes); for your own classes use `defect-fit classifier DATA`.
dataset_type = 'NEUCLSDataset'
data_prefix = '../shared/data/neu_cls'
split_dir = 'work_dirs/cls/neu_cls_split'
img_size = 64
num_classes = 6

data_preprocessor = dict(
    num_classes=num_classes,
    # ImageNet statistics on the 0-255 scale; images are loaded BGR by cv2 and flipped to RGB here.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type=dataset_type, data_root='', data_prefix=data_prefix,
                 ann_file=split_dir + '/train.txt', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(type=dataset_type, data_root='', data_prefix=data_prefix,
                 ann_file=split_dir + '/test.txt', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
# mmpretrain's own metrics: top-1, per-class precision/recall/F1 (average=None), confusion matrix.
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='SingleLabelMetric', average=None),
    dict(type='SingleLabelMetric', average='macro', prefix='macro'),
    dict(type='ConfusionMatrix'),
]
# There is no separate validation split: the 30% test split is evaluated after training.
test_dataloader = val_dataloader
test_evaluator = val_evaluator
