"""End to end: anomalib's CLI and benchmark with AKF-RD, defect-teacher."""
