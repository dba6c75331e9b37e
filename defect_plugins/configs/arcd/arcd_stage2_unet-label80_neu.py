# ARCD(U-Net) on NEU-Seg with 80 % of the labelled training images (thesis Table 3.4 style; a seeded random
# subset, NEUSegDataset.label_fraction / subset_seed). Other fractions: --cfg-options
# train_dataloader.dataset.label_fraction=0.3 (0.5, ...). Baseline: unet_plain-label80_neu.py.
_base_ = ['./arcd_stage2_unet_neu.py']
train_dataloader = dict(dataset=dict(label_fraction=0.8, subset_seed=0))
