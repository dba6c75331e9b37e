"""NEU-CLS classification: SARSN ablations, RKD students, imbalanced benchmark, over seeds."""
