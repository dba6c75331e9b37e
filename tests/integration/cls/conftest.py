"""The cls folder (mgjr/ included): importing ``defect_plugins.cls`` registers the components in mmpretrain.

The fixtures (tiny class folders, the MGJR teacher) are shared with the other side of the suite:
tests/fixtures/cls.py and tests/fixtures/mgjr.py.
"""
import defect_plugins.cls  # noqa: F401  (registers the components)
