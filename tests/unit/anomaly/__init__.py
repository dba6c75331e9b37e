"""Unit tests of defect_plugins.anomaly (AKF-RD and its anomalib parts)."""
