# The AGTS corruption of every 64x64 MGJR config and of the noise-augmentation control (one definition, so that
# MGJR and its control see the same noise). Per image one kind: Gaussian sigma 0.02-0.12 (x255),
# salt-and-pepper 0.01-0.08, or Gaussian blur sigma 0.5-1.5 px. seed=None: the noise follows randomness.seed.
agts_noise = dict(type='AGTSNoise', kinds=('gaussian', 'salt_pepper', 'blur'), gaussian_sigma=(0.02, 0.12),
                  sp_amount=(0.01, 0.08), blur_sigma=(0.5, 1.5), seed=None)
