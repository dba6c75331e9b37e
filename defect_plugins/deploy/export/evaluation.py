"""A model's metric on a labelled folder: the one entry point for the INT8 guard's metric and the held-out figures.

Before, the INT8 guard (``deploy/int8.py``) and the demo's figures (``deploy/scoring.py``) read the
same folders with the same private readers and computed the same metrics twice, one of them with
a numpy IoU of its own. Now each family's export half reads its layout once
(``read_labelled``) and computes everything from one prediction per image (``measure``):
:func:`evaluate` is that for any family and any predict function (an OpenVINO IR, the PyTorch
reference), :func:`evaluate_ir` the same on an IR file at an explicit precision, which is what the
demo and the results document report. Layouts and metrics per family: the module docstrings of
:mod:`.families.classifier`, :mod:`.families.segmentor` and :mod:`.families.anomaly`.
"""
from __future__ import annotations

from pathlib import Path

from ..metadata import ModelMetadata
from ..runtime import Predict, openvino_predict, read_metadata
from .families import Evaluation, get_export_family

__all__ = ["Evaluation", "evaluate", "evaluate_ir"]


def evaluate(predict: Predict, metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None,
             split: str | None = None, figures: bool = True) -> Evaluation:
    """The family's metric (and, with ``figures``, its held-out figures) of ``predict`` on a labelled folder.

    ``limit``: at most this many images (drawn with a fixed seed); ``split``: one ``img_dir``
    sub-folder of an mmseg layout (segmentor only). Unreadable images are skipped and counted.
    """
    family = get_export_family(metadata.family)
    return family.measure(predict, metadata,
                          family.read_labelled(metadata, folder, limit=limit, split=split, figures=figures))


def evaluate_ir(model_xml: str | Path, folder: str | Path, *, precision: str = "f32", split: str | None = None,
                limit: int | None = None) -> Evaluation:
    """:func:`evaluate` of an IR on ``folder`` through OpenVINO at ``precision`` (explicit: the CPU default is bf16).

    ``figures`` of the result carry ``precision`` too: they are what a line running this IR would see.
    """
    metadata = read_metadata(model_xml)
    result = evaluate(openvino_predict(model_xml, precision), metadata, folder, limit=limit, split=split)
    result.figures["precision"] = precision
    return result
