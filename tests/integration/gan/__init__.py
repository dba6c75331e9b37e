"""End to end: defect-migrate training through the launcher, killed and resumed."""
