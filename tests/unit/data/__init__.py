"""Unit tests of defect_plugins.data (the synthetic data sets, defect-synth)."""
