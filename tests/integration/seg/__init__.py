"""End to end: both ARCD stages through tools/mim_train.sh and the launcher, export."""
