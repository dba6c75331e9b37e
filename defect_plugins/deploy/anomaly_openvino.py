"""Run an anomalib OpenVINO export on the CPU at an explicit precision.

``anomalib export --export_type openvino`` writes ``model.xml``/``model.bin``
whose graph contains the model's pre-processor (resize + ImageNet
normalisation) and post-processor (score/map normalisation, threshold): it
takes an RGB float image in ``[0, 1]``, ``(N, 3, H, W)``, of any size and returns
``pred_score``, ``pred_label``, ``anomaly_map`` and ``pred_mask``.

Why this helper rather than calling OpenVINO directly: on CPUs with AMX/AVX512
bf16 OpenVINO infers in bf16 unless told otherwise, which moved an exported
anomaly score here from 0.744 (PyTorch) to 0.0. :class:`AnomalyOpenVINOModel`
always compiles with an explicit ``INFERENCE_PRECISION_HINT`` (``"f32"`` by
default) and reports which one it used.

INT8: anomalib's ``CompressionType.INT8_PTQ`` hands the *whole* graph to
``nncf.quantize``, including the scoring head of teacher-student models
(cosine distance, upsampling, Gaussian blur, score normalisation). For
reverse distillation (anomalib's and AKF-RD) that made every score 0.0 here:
``1 - cos`` of 8-bit features is mostly quantisation noise. :func:`quantize_int8`
quantises the networks (convolutions) and keeps the scoring head in f32
(an nncf ``IgnoredScope`` over the element-wise/reduction ops and the blur
convolution), which kept the image AUROC of the FP32 export in our checks.

Command line (writes ``scores.csv`` and one heatmap PNG per image)::

    python -m defect_plugins.deploy.anomaly_openvino MODEL.xml IMAGE_OR_DIR [...] --out DIR [--precision f32]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AnomalyOpenVINOModel", "AnomalyPrediction", "main", "quantize_int8"]

# Op types of the scoring head / post-processing that stay in f32 in quantize_int8.
_F32_OP_TYPES = (
    "Multiply", "Divide", "ReduceL2", "ReduceSum", "ReduceMax", "Interpolate", "Subtract", "Clamp",
    "Maximum", "Minimum", "Sqrt", "Power", "Softmax",
)

_PRECISIONS = ("f32", "f16", "bf16")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class AnomalyPrediction:
    """Outputs for one image (arrays without the batch axis)."""

    score: float
    label: bool | None
    anomaly_map: np.ndarray
    mask: np.ndarray | None


def _load_image(image: str | Path | np.ndarray) -> np.ndarray:
    """Return an RGB float32 ``(3, H, W)`` array in ``[0, 1]``."""
    if isinstance(image, str | Path):
        import cv2

        path = Path(image)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            msg = f"Cannot read image {path} (missing or not an image)."
            raise FileNotFoundError(msg)
        array = bgr[..., ::-1].astype(np.float32) / 255.0
        return np.ascontiguousarray(array.transpose(2, 0, 1))
    array = np.asarray(image)
    if array.ndim == 2:  # noqa: PLR2004 - grayscale: replicate to RGB
        array = np.repeat(array[None], 3, axis=0)
    elif array.ndim == 3 and array.shape[-1] == 3 and array.shape[0] != 3:  # noqa: PLR2004 - HWC
        array = array.transpose(2, 0, 1)
    if array.ndim != 3 or array.shape[0] != 3:  # noqa: PLR2004
        msg = f"Expected an RGB image (H, W, 3) or (3, H, W) or grayscale (H, W), got shape {array.shape}."
        raise ValueError(msg)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32)


class AnomalyOpenVINOModel:
    """An anomalib OpenVINO IR compiled with an explicit precision hint.

    Args:
        model_xml: Path to ``model.xml`` (``model.bin`` next to it).
        device: OpenVINO device. Defaults to ``"CPU"``.
        precision: ``INFERENCE_PRECISION_HINT``: ``"f32"`` (default, use it for
            parity checks and thresholds), ``"f16"`` or ``"bf16"``.
        performance_hint: ``"LATENCY"`` (default) or ``"THROUGHPUT"``.
        num_threads: Inference threads (``None``: OpenVINO decides).
    """

    def __init__(
        self,
        model_xml: str | Path,
        device: str = "CPU",
        precision: str = "f32",
        performance_hint: str = "LATENCY",
        num_threads: int | None = None,
    ) -> None:
        import openvino as ov

        path = Path(model_xml)
        if path.suffix != ".xml" or not path.is_file() or not path.with_suffix(".bin").is_file():
            msg = f"OpenVINO model not found: expected {path} and {path.with_suffix('.bin')}."
            raise FileNotFoundError(msg)
        if precision not in _PRECISIONS:
            msg = f"precision must be one of {_PRECISIONS}, got {precision!r}."
            raise ValueError(msg)
        self.precision = precision
        self.config: dict[str, str] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": performance_hint}
        if num_threads is not None:
            self.config["INFERENCE_NUM_THREADS"] = str(int(num_threads))
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(path), device, self.config)
        self.output_names = [next(iter(out.get_names())) for out in self.compiled.outputs]
        self.request = self.compiled.create_infer_request()

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run a float ``(N, 3, H, W)`` batch in ``[0, 1]``; return all outputs by name."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3:  # noqa: PLR2004
            msg = f"Expected a (N, 3, H, W) batch, got {batch.shape}."
            raise ValueError(msg)
        result = self.request.infer({0: batch})
        outputs = zip(self.output_names, self.compiled.outputs, strict=True)
        return {name: np.asarray(result[out]) for name, out in outputs}

    def predict(self, image: str | Path | np.ndarray) -> AnomalyPrediction:
        """Score one image (path, ``HxWx3``/``3xHxW`` uint8 or float array)."""
        outputs = self.infer(_load_image(image)[None])
        label = outputs.get("pred_label")
        mask = outputs.get("pred_mask")
        return AnomalyPrediction(
            score=float(outputs["pred_score"].reshape(-1)[0]),
            label=None if label is None else bool(label.reshape(-1)[0]),
            anomaly_map=outputs["anomaly_map"][0].squeeze(0),
            mask=None if mask is None else mask[0].squeeze(0).astype(bool),
        )


def quantize_int8(
    model_xml: str | Path,
    calibration: Iterable[np.ndarray],
    output_xml: str | Path,
    subset_size: int = 300,
) -> Path:
    """Post-training INT8 quantisation (nncf) of an anomalib OpenVINO export, scoring head kept in f32.

    Args:
        model_xml: FP32 ``model.xml`` from ``anomalib export --export_type openvino``.
        calibration: Float ``(N, 3, H, W)`` batches in ``[0, 1]`` of *normal* images
            (e.g. the training set), as the exported model takes them.
        output_xml: Where to write the INT8 ``model.xml`` (+ ``.bin``); written to a
            temporary name first and renamed, so no half-written model is left.
        subset_size: Calibration items (batches) nncf uses at most.

    Returns:
        Path of the INT8 ``model.xml``.
    """
    import nncf
    import openvino as ov

    source = Path(model_xml)
    if not source.is_file():
        msg = f"OpenVINO model not found: {source}."
        raise FileNotFoundError(msg)
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration]
    if not batches:
        msg = "quantize_int8 needs at least one calibration batch."
        raise ValueError(msg)
    model = ov.Core().read_model(source)
    # Single-channel convolutions are the Gaussian blur of the anomaly map, not the network.
    blur = [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "Convolution" and list(op.input(1).get_partial_shape().to_shape())[:2] == [1, 1]
    ]
    ignored = nncf.IgnoredScope(names=blur, types=list(_F32_OP_TYPES), validate=False)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(batches),
        subset_size=min(subset_size, len(batches)),  # nncf counts dataset items (batches)
        ignored_scope=ignored,
    )
    target = Path(output_xml)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp.xml")
    ov.save_model(quantized, tmp, compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
    tmp.replace(target)
    return target


def _collect_images(inputs: Sequence[str]) -> list[Path]:
    images: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES))
        elif path.is_file():
            images.append(path)
        else:
            msg = f"Input {path} does not exist."
            raise FileNotFoundError(msg)
    if not images:
        msg = f"No images ({', '.join(_IMAGE_SUFFIXES)}) found in {list(inputs)}."
        raise FileNotFoundError(msg)
    return images


def _heatmap(image_path: Path, anomaly_map: np.ndarray) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    heat = cv2.resize(np.clip(anomaly_map, 0.0, 1.0).astype(np.float32), (bgr.shape[1], bgr.shape[0]))
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(bgr, 0.55, colour, 0.45, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: score images with an exported model, write ``scores.csv`` and heatmaps."""
    import cv2

    parser = argparse.ArgumentParser(description="Score images with an anomalib OpenVINO export (explicit precision).")
    parser.add_argument("model", type=Path, help="model.xml written by `anomalib export --export_type openvino`")
    parser.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for scores.csv and heatmaps/")
    parser.add_argument("--precision", choices=_PRECISIONS, default="f32")
    parser.add_argument("--device", default="CPU")
    args = parser.parse_args(argv)
    try:
        model = AnomalyOpenVINOModel(args.model, device=args.device, precision=args.precision)
        images = _collect_images(args.inputs)
    except (FileNotFoundError, ValueError) as error:
        print(f"anomaly_openvino: error: {error}", file=sys.stderr)
        return 1
    heat_dir = args.out / "heatmaps"
    heat_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, path in enumerate(images):
        prediction = model.predict(path)
        name = f"{index:05d}_{path.parent.name}_{path.stem}.png"
        cv2.imwrite(str(heat_dir / name), _heatmap(path, prediction.anomaly_map))
        rows.append(
            {"image": str(path), "score": f"{prediction.score:.6f}", "label": prediction.label, "heatmap": name},
        )
    with (args.out / "scores.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"scored {len(rows)} images at {model.precision}: {args.out / 'scores.csv'}, heatmaps in {heat_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
