"""``python -m defect_plugins.deploy.export``: the same as ``defect-export``."""
import sys

from .cli import main

sys.exit(main())
