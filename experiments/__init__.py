"""Studies outside the product: scripts, their support code (``experiments.lib``), raw run records and tests.

See ``experiments/README.md``. Nothing in ``defect_plugins`` imports this package and the wheel does not hold it.
"""
