"""``python -m defect_plugins.station`` is ``defect-station``."""
import sys

from .cli import main

sys.exit(main())
