"""defect-plugins: industrial surface-defect methods as plugins for anomalib, mmpretrain and mmsegmentation.

Importing the package applies the compatibility fixes in :mod:`defect_plugins.compat` once.
The components themselves live in one subpackage per host toolkit and are registered when
that subpackage is imported:

- :mod:`defect_plugins.anomaly` — anomalib models (AKF reverse distillation);
- :mod:`defect_plugins.cls` — mmpretrain components (SARSN, RKD, MGJR);
- :mod:`defect_plugins.seg` — mmsegmentation components (ARCD, MFLM, CALM);
- :mod:`defect_plugins.deploy` — OpenVINO export, inference and benchmarks;
- :mod:`defect_plugins.data` — synthetic steel data sets.
"""
from defect_plugins.compat import apply_all as _apply_compat

__version__ = "0.1.0"

_apply_compat()
