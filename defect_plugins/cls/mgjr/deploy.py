"""OpenVINO export of the MGJR student (the teacher and projector exist only for training).

Everything is :mod:`defect_plugins.deploy.classifier_openvino`: its loader builds only the
student of a distillation config (a plain mmpretrain ``ImageClassifier`` from the config's
``backbone`` / ``neck`` / ``head`` / ``data_preprocessor``), drops the training-only keys
(``projector.*``, ``teacher.*``) and requires every other key to match; its exporter bakes the
preprocessing into the graph and checks f32 parity and latency. This module only names the
output ``mgjr_student`` by default.

CLI::

    python -m defect_plugins.cls.mgjr.deploy CONFIG CHECKPOINT --out DIR [--image-size 64]
        [--parity-images IMG ...] [--benchmark] [--threads N]
"""
from __future__ import annotations

import sys

from defect_plugins.deploy import classifier_openvino
from defect_plugins.deploy.classifier_openvino import load_classifier as load_student
from defect_plugins.deploy.classifier_openvino import student_model_config

__all__ = ["load_student", "main", "student_model_config"]


def main(argv: list[str] | None = None) -> int:
    """``classifier_openvino``'s command with the output named ``mgjr_student`` unless ``--name`` is given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return classifier_openvino.main(["--name", "mgjr_student", *argv])


if __name__ == "__main__":
    sys.exit(main())
