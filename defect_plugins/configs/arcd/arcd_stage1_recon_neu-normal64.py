# ARCD stage 1 on genuine normal NEU-Seg surface: 64x64 windows of the NEU-Seg
# *training* images whose mask (grown by 4 px) is background only, instead of whole defective images
# (_base_/neu_stage1.py). Write them first:
#   defect-seg-normal-patches ../shared/data/neu_seg --out work_dirs/seg/neu_normal64 --size 64
# Measured on the shared NEU-Seg copy: 8840 training and 975 held-out patches from 2609 of the 3129
# training images; the held-out patches come from other source images than the training ones, and
# no NEU-Seg val/test image (stage 2's evaluation) contributes a pixel. NEU-Seg's masks miss some
# faint defects, so a few patches still hold unlabelled defects (docs/RESULTS.md, ARCD section).
_base_ = ['./_base_/neu_stage1.py']
patch_root = 'work_dirs/seg/neu_normal64'
train_dataloader = dict(batch_size=16, dataset=dict(data_root=patch_root, img_suffix='.png',
                                                    data_prefix=dict(img_path='train')))
val_dataloader = dict(dataset=dict(data_root=patch_root, img_suffix='.png', data_prefix=dict(img_path='val'),
                                   indices=400))
test_dataloader = val_dataloader
