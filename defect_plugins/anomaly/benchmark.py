"""``anomalib benchmark`` with this package's models allowed in the grid.

    python -m defect_plugins.anomaly.benchmark --config benchmark.yaml

takes exactly the arguments of ``anomalib benchmark`` and runs anomalib's own CLI. The only
difference: ``defect_plugins.anomaly`` is imported first, which applies
``defect_plugins.compat.anomalib_plugin_models`` (anomalib's ``get_model`` then accepts
``class_path: defect_plugins.anomaly.AkfReverseDistillation``, and the results table takes
models with different metric sets). The plain ``anomalib`` command never imports this package
(a benchmark config is read as plain YAML), so there the fix cannot be in place.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import defect_plugins.anomaly  # noqa: F401  (applies the compatibility fixes)

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``anomalib benchmark ARGV`` (default: this process's arguments) in this process."""
    from anomalib.cli.cli import AnomalibCLI
    from anomalib.loggers import configure_logger

    configure_logger()  # as anomalib's own entry point (anomalib.cli.cli.main)
    AnomalibCLI(["benchmark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
