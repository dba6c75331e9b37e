"""Fixtures of the study tests: the product suite's own (tests/), so both run from a clone the same way."""
from __future__ import annotations

# tests/conftest.py applies the compatibility fixes and keeps hubs offline; its fixtures and the families'
# tiny data sets are reused as they are.
from tests.cls.conftest import tiny_cls_data, tiny_cls_split  # noqa: F401
from tests.cls.mgjr.conftest import teacher_checkpoint, tiny_neu  # noqa: F401
from tests.conftest import REPO_ROOT, repo_root  # noqa: F401
from tests.seg.conftest import strip_data  # noqa: F401
