"""Fixtures of the study tests: the product suite's own (tests/), so both run from a clone the same way."""
from __future__ import annotations

# tests/conftest.py applies the compatibility fixes and keeps hubs offline; its fixtures and the families'
# tiny data sets (tests/fixtures/) are reused as they are.
from tests.conftest import REPO_ROOT, repo_root  # noqa: F401
from tests.fixtures.cls import tiny_cls_data, tiny_cls_split  # noqa: F401
from tests.fixtures.mgjr import teacher_checkpoint, tiny_neu  # noqa: F401
from tests.fixtures.seg import strip_data  # noqa: F401

# the components, registered as the suite's cls and seg folders register them (their conftest.py)
import defect_plugins.cls  # noqa: F401
import defect_plugins.seg  # noqa: F401
