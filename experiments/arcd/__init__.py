"""ARCD on NEU-Seg: mmseg runs over seeds, the stage-1 residual as a defect cue, complexity against the thesis."""
