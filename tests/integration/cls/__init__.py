"""End to end: mmpretrain trainings through tools/mim_train.sh and mim_test.sh."""
