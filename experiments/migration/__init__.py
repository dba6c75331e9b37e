"""CycleGAN defect-sample migration: a new line with few labels."""
