"""defect-plugins: industrial surface-defect methods as plugins for anomalib, mmpretrain and mmsegmentation.

The components live in one subpackage per host toolkit and are registered when that subpackage
is imported; importing one of them (or the launcher, the demo, the export) first applies the
compatibility fixes of :mod:`defect_plugins.compat`:

- :mod:`defect_plugins.anomaly` — anomalib models (AKF reverse distillation);
- :mod:`defect_plugins.cls` — mmpretrain components (SARSN, RKD, MGJR);
- :mod:`defect_plugins.seg` — mmsegmentation components (ARCD, MFLM, CALM);
- :mod:`defect_plugins.deploy` — OpenVINO export, inference and benchmarks;
- :mod:`defect_plugins.data` — synthetic steel data sets.

``import defect_plugins`` alone imports nothing else and patches nothing, so that running
exported models (``defect_plugins.deploy.DefectInferencer``, ``defect-infer``) needs neither torch
nor any toolkit (the runtime-only install in the README).
"""

__version__ = "0.1.0"
