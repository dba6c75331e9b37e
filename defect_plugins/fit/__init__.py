"""From a user's own images to a model bundle: folder layouts, splits, calibration, training, bundles.

:mod:`.domain_teacher` trains a domain teacher backbone for anomalib on labelled images (``defect-teacher``).
"""
