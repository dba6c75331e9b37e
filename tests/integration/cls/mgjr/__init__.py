"""End to end: both MGJR stages through tools/mim_train.sh, then defect-export."""
