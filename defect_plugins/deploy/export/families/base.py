"""What the three export family modules share: the loaded model, errors, labelled folders, the metric record.

Export-time only: ``load`` of every family builds a torch model with its toolkit, and the metric
code is the toolkits' own (mmpretrain ``Accuracy``, mmseg ``IoUMetric``, torchmetrics
``binary_auroc``). The runtime side of each family (post-processing, overlays, adopting an
``anomalib export`` IR) is :mod:`defect_plugins.deploy.families` and never imports this.

Labelled folders are read once into a :class:`LabelledSet` (model inputs at the export size and
their targets, in the same order); unreadable images are skipped and counted. A family's
``measure`` turns a predict function and such a set into one :class:`Evaluation`: the metric the
INT8 guard compares (``name``, ``value``) and, when the set was read ``with_figures``, every
held-out figure the demo and the results document report (``figures``).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import ImageReadError, read_bgr
from defect_plugins.imaging.geometry import to_input

from ...metadata import ModelMetadata


class ExportError(RuntimeError):
    """The model cannot be exported as asked (bad arguments, missing files)."""


@dataclass
class LoadedModel:
    """A PyTorch model of one family with this package's input contract, ready to convert.

    ``module`` maps a uint8 BGR ``(N, H, W, 3)`` tensor to the outputs named in
    ``metadata.outputs`` (a tensor or a tuple) with the preprocessing written in torch: it is the
    reference the OpenVINO graph is checked against (:func:`defect_plugins.deploy.export.parity`)
    and the PyTorch eager variant of the benchmark. ``converter(dynamic)`` builds the FP32
    ``ov.Model``, whose preprocessing is OpenVINO's ``PrePostProcessor``
    (:mod:`defect_plugins.deploy.preprocess`).
    """

    module: Any
    metadata: ModelMetadata
    converter: Callable[[bool], Any] = field(repr=False)
    _converted: dict = field(default_factory=dict, repr=False)

    def convert(self, dynamic: bool) -> Any:
        """The FP32 ``ov.Model`` (converted once per static/dynamic choice, then copied)."""
        if dynamic not in self._converted:
            self._converted[dynamic] = self.converter(dynamic)
        return self._converted[dynamic].clone()

    def torch_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """The reference module's outputs on a uint8 BGR NHWC batch, as numpy arrays in output order."""
        import torch

        with torch.no_grad():
            result = self.module(torch.from_numpy(np.ascontiguousarray(batch)))
        result = result if isinstance(result, (tuple, list)) else (result,)
        return [r.detach().float().numpy() if r.dtype != torch.bool else r.numpy() for r in result]


@dataclass(frozen=True)
class LabelledSet:
    """A labelled folder read once: model inputs and targets, in the same order.

    ``inputs`` are uint8 ``(1, H, W, 3)`` BGR at the export size; ``targets`` are class indices
    (classifier), label maps on the model grid (segmentor) or 0/1 normal/defect (anomaly).
    ``references`` (one per input, or empty when the set was read without figures) hold what only
    the held-out figures need: the MVTec AD mask of an anomaly image, the machine-bed map of a
    strip (``None`` where there is none). ``split``: the ``img_dir`` sub-folder read (segmentor).
    """

    root: Path
    inputs: list[np.ndarray]
    targets: list[Any]
    skipped: int
    references: list[Any] = field(default_factory=list)
    with_figures: bool = False
    split: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """A model's metric on a labelled set.

    ``name`` / ``value``: the family's metric (higher is better), the criterion of the INT8 guard;
    ``num_images`` read and ``skipped`` unreadable; ``figures``: the held-out figures (empty when
    the set was read without them).
    """

    name: str
    value: float
    num_images: int
    skipped: int
    figures: dict[str, Any] = field(default_factory=dict)


def check_file(path: str | Path | None, what: str) -> Path:
    """``path`` as a Path, or :class:`ExportError` naming ``what`` is missing."""
    if path is None:
        raise ExportError(f"{what} is required")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{what} {path} not found")
    return path


def checkpoint_classes(checkpoint: Path) -> list[str] | None:
    """Class names stored by mmengine in a checkpoint's ``meta`` (``dataset_meta.classes`` or ``CLASSES``)."""
    import torch

    state = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    meta = state.get("meta", {}) if isinstance(state, dict) else {}
    classes = (meta.get("dataset_meta") or {}).get("classes") or meta.get("CLASSES")
    return [str(c) for c in classes] if classes else None


def convert_network(network: Any, size: tuple[int, int], dynamic: bool, output_names: list[str]) -> Any:
    """``openvino.convert_model`` of a torch network on float ``(N, 3, H, W)`` input, outputs named.

    The batch is always free; height and width are ``size`` or free when ``dynamic``.
    """
    import openvino as ov
    import torch

    height, width = int(size[0]), int(size[1])
    shape = ov.PartialShape([-1, 3, -1, -1] if dynamic else [-1, 3, height, width])
    example = torch.rand(1, 3, height, width) * 255
    with torch.no_grad():
        ov_model = ov.convert_model(network, example_input=example, input=[(shape, ov.Type.f32)])
    if len(ov_model.outputs) != len(output_names):
        raise ExportError(f"the converted graph has {len(ov_model.outputs)} outputs, expected {output_names}")
    for output, name in zip(ov_model.outputs, output_names):
        output.get_tensor().set_names({name})
    return ov_model


def sample(items: list, limit: int | None, seed: int = 0) -> list:
    """At most ``limit`` of ``items`` (tuples whose first element is a path), drawn with ``seed``, in path order."""
    if limit is None or len(items) <= limit:
        return items
    return sorted(random.Random(seed).sample(items, limit), key=lambda item: str(item[0]))


def read_inputs(root: Path, items: list[tuple[Path, Any]], metadata: ModelMetadata,
                ) -> tuple[list[np.ndarray], list[tuple[Path, Any]], int]:
    """``(model inputs, the items read, skipped count)``: each image at the export size; unreadable ones skipped.

    ``FileNotFoundError`` naming ``root`` when no image of ``items`` can be read.
    """
    size = tuple(metadata.input_size)
    inputs, kept, skipped = [], [], 0
    for path, label in items:
        try:
            inputs.append(to_input(read_bgr(path), size, metadata.resize))
        except ImageReadError:
            skipped += 1
            continue
        kept.append((path, label))
    if not inputs:
        raise FileNotFoundError(f"{root}: no readable labelled image")
    return inputs, kept, skipped


def check_folder(folder: str | Path) -> Path:
    """``folder`` as a Path, or ``FileNotFoundError`` naming it."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"evaluation folder {root} does not exist")
    return root


def selected(indices: Any, count: int) -> list[int]:
    """``indices`` as a list (all of ``range(count)`` when ``None``): NNCF's validation subsets, or everything."""
    return list(range(count)) if indices is None else list(indices)
