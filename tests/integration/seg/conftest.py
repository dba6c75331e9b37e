"""The seg folder: every test in mmseg's default scope on one torch thread (tests/fixtures/seg_autouse.py,
which also registers the components). Data and config helpers: tests/fixtures/seg.py."""
from tests.fixtures.seg_autouse import _mmseg_scope, _one_thread  # noqa: F401
