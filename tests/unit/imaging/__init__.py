"""Unit tests of defect_plugins.imaging (decoding, quantification)."""
