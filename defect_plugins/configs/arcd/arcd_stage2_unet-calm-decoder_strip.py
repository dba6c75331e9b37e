# ARCD(U-Net) with CALM inside the U-Net decoder (thesis section 4.3.2): after each of the four decoder stages
# (AttentionUNet levels 1-4: 128, 64, 32, 16 channels), so each shallower stage works on re-weighted features.
# Other placements: --cfg-options model.backbone.attention_levels=[4] (last only), ...; CBAM / CA instead:
# model.backbone.attention.type=CBAM / CoordAttention.
_base_ = ['./_base_/strip_stage2_unet.py']
model = dict(backbone=dict(type='AttentionUNet', attention=dict(type='CALM'), attention_levels=[1, 2, 3, 4]))
