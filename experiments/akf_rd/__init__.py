"""AKF reverse distillation against anomalib's ReverseDistillation and PatchCore (MVTec AD protocol, DeepPCB)."""
