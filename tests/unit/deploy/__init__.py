"""Unit tests of defect_plugins.deploy (export, inference, INT8, benchmark, report)."""
