# ARCD(U-Net) with CALM inside the U-Net decoder (thesis section 4.3.2): after each of the three decoder stages
# (AttentionUNet levels 1, 2, 3: 32, 16, 8 channels), so each shallower stage works on re-weighted features.
# Other placements: --cfg-options model.backbone.attention_levels=[3] (last only), ...; CBAM / CA instead:
# model.backbone.attention.type=CBAM / CoordAttention.
_base_ = ['./_base_/neu_stage2_unet.py']
model = dict(backbone=dict(type='AttentionUNet', attention=dict(type='CALM'), attention_levels=[1, 2, 3]))
