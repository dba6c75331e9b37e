"""``python -m defect_plugins.deploy.bench``: the same as ``defect-bench``."""
import sys

from .cli import main

sys.exit(main())
