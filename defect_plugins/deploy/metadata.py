"""Metadata that travels with every exported model (class names, input, thresholds, precision).

A factory program that receives ``model.xml`` must not need the training config to use it: it
must know which family of model it has, what input the graph expects, the class names, the
decision thresholds, the normalisation baked into the graph and the weight precision. The
metadata is stored twice (written by :func:`defect_plugins.deploy.runtime.save_ir`):

* inside the IR, in the model's runtime info under ``defect_plugins/metadata`` (a JSON string;
  OpenVINO keeps rt_info in ``model.xml``), so the IR alone is self-describing;
* next to it as ``<name>.meta.json``, for humans and for tools that do not read IR files.

Integrity (:func:`defect_plugins.deploy.runtime.save_ir` writes it, ``read_model`` checks it):
8 MB of zeros written over a ``model.bin`` loads without complaint in OpenVINO and only changes
the predictions, and an export interrupted while replacing an earlier one could pair a ``.xml``
with another export's ``.bin`` or sidecar. So the SHA-256 of the files is recorded at export:

* the rt_info carries the hash of the ``.bin`` (``defect_plugins/integrity``), so the IR alone
  (``.xml`` + ``.bin`` copied without the sidecar) still detects changed weights;
* the sidecar carries the hashes of both the ``.xml`` and the ``.bin`` (key ``integrity``): the
  ``.xml`` cannot hold its own hash (writing the hash changes the file), so only a file next to
  it can bind the three files of one export together.

IRs without these records (exports older than this scheme, IRs written by ``anomalib export``)
load as before, unchecked. Checking costs one read of each file: 0.08-0.11 s per 100 MB of
``.bin`` on this project's CPU (hashlib's SHA-256 at ~1 GB/s with SHA-NI, file in the page
cache); for a 100 MB IR, OpenVINO's own ``read_model`` takes 0.01 s (it maps the ``.bin`` lazily)
and ``compile_model`` 0.23 s, so a checked load takes ~0.32 s instead of ~0.24 s.

Input contract of every export of this package: ``uint8`` images ``(N, H, W, 3)`` in **BGR**
order, exactly what ``cv2.imread`` returns; channel order, scaling and normalisation are inside
the graph and only recorded here for documentation.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from defect_plugins.imaging.geometry import RESIZE_MODES

FAMILIES = ("classifier", "segmentor", "anomaly")
WEIGHT_PRECISIONS = ("FP32", "FP16", "INT8")
RT_INFO_PATH = ["defect_plugins", "metadata"]
INTEGRITY_RT_INFO_PATH = ["defect_plugins", "integrity"]  # {"bin_sha256": ...}, JSON
INTEGRITY_KEY = "integrity"  # in the sidecar: {"xml_sha256": ..., "bin_sha256": ...}
SCHEMA_VERSION = 1


class MetadataError(ValueError):
    """The metadata of an exported model is missing or inconsistent."""


class ModelIntegrityError(ValueError):
    """A model file does not match the SHA-256 recorded for it at export (changed, or from another export).

    Not a :class:`MetadataError` on purpose: code that catches a *missing* metadata to fall back
    (``load_ir`` adopting an ``anomalib export`` IR) must never catch this one and load the file anyway.
    """


@dataclass
class ModelMetadata:
    """Everything an inference program needs to use an exported model correctly.

    Attributes:
        family: ``classifier`` (mmpretrain), ``segmentor`` (mmseg) or ``anomaly`` (anomalib).
        precision: weight precision of the IR: ``FP32``, ``FP16`` (compressed weights) or ``INT8``
            (NNCF post-training quantization).
        input_size: ``(height, width)`` the model was exported (and calibrated) at.
        dynamic: True when height and width may differ from ``input_size`` at run time.
        resize: how an image is brought to ``input_size`` outside the graph: ``stretch``
            (``cv2.resize``) or ``pad_square`` (pad bottom/right to a square, then resize, as the
            ARCD strip configs' ``PadSquareResize`` does); results are mapped back the same way.
        class_names: classifier/segmentor classes in output order; anomaly: ``["good", "defect"]``.
        outputs: output tensor names in order.
        thresholds: decision thresholds on the model's outputs (anomaly: normalised image score
            and pixel threshold; classifier: minimum confidence to accept the top class).
        normalisation: what the graph does to the input (mean/std on the 0-255 scale, channel order).
        region_classes: segmentor only: names of the region head's classes (machine bed), if any.
        source: where the model came from (config, checkpoint, anomalib class).
        quantization: INT8 only: metric name, value before/after, tolerance, calibration images.
    """

    family: str
    precision: str
    input_size: tuple[int, int]
    dynamic: bool = False
    resize: str = "stretch"
    class_names: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    normalisation: dict[str, Any] = field(default_factory=dict)
    region_classes: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    input_format: str = "uint8 (N, H, W, 3) BGR, as returned by cv2.imread"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise MetadataError(f"metadata 'family' must be one of {FAMILIES}, got {self.family!r}")
        if self.precision not in WEIGHT_PRECISIONS:
            raise MetadataError(f"metadata 'precision' must be one of {WEIGHT_PRECISIONS}, got {self.precision!r}")
        size = tuple(int(v) for v in self.input_size)
        if len(size) != 2 or min(size) < 1:
            raise MetadataError(f"metadata 'input_size' must be (height, width) > 0, got {self.input_size!r}")
        self.input_size = size  # type: ignore[assignment]
        if self.resize not in RESIZE_MODES:
            raise MetadataError(f"metadata 'resize' must be one of {RESIZE_MODES}, got {self.resize!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMetadata":
        known = set(cls.__dataclass_fields__)
        missing = {"family", "precision", "input_size"} - set(data)
        if missing:
            raise MetadataError(f"metadata lacks the keys {sorted(missing)}")
        return cls(**{key: value for key, value in data.items() if key in known})

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise MetadataError(f"metadata is not valid JSON: {error}") from error


def sidecar_path(model_xml: str | Path) -> Path:
    """``model.xml`` -> ``model.meta.json``."""
    path = Path(model_xml)
    return path.with_name(path.stem + ".meta.json")


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks (a ``.bin`` can be larger than memory allows twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
