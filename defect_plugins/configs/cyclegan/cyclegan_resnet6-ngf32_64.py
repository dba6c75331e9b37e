# The same CycleGAN at half width (32 base filters in generators and discriminators): about a quarter of the
# compute of cyclegan_resnet6_64.py, for CPU-only training. Everything else is inherited.
_base_ = ['./cyclegan_resnet6_64.py']
model = dict(generator=dict(base_channels=32), discriminator=dict(base_channels=32))
