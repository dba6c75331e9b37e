# Plain U-Net on NEU-Seg with 80 % of the labelled training images (the same seeded subset as
# arcd_stage2_unet-label80_neu.py: label_fraction=0.8, subset_seed=0).
_base_ = ['./unet_plain_neu.py']
train_dataloader = dict(dataset=dict(label_fraction=0.8, subset_seed=0))
