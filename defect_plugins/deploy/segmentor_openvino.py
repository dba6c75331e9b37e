"""Export an mmseg segmentor (ARCD or plain) to one OpenVINO model and run it at f32.

The exported graph is the whole inference path: normalisation with the model's data
preprocessor (mean/std, BGR->RGB if configured), the frozen ARCD reconstructor, the
discrimination network, the defect head and, when present, the region head, each up-sampled to
the input size and turned into softmax probabilities. Input: a BGR float image on the 0-255
scale, ``(N, 3, H, W)``, already brought to the training geometry (for the strip configs:
:func:`~defect_plugins.seg.transforms.pad_square_resize` to ``scale``). Outputs:
``seg_probs`` ``(N, K, H, W)`` and, with a region head, ``region_probs`` ``(N, 2, H, W)``.

Conversion uses ``openvino.convert_model`` on the PyTorch module (no ONNX step); the IR is
written to a temporary folder and moved into place, so a failed export leaves nothing behind.
OpenVINO runs bf16 by default on CPUs that support it: every parity and latency figure here is
taken with ``INFERENCE_PRECISION_HINT="f32"`` unless ``precision`` says otherwise.

Command line::

    python -m defect_plugins.deploy.segmentor_openvino CONFIG CHECKPOINT OUT_DIR --shape 256 256
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SegmentorExportWrapper", "benchmark_latency", "compile_model", "export_segmentor", "main", "parity"]


class SegmentorExportWrapper(nn.Module):
    """Raw BGR image -> (defect probabilities[, region probabilities]) for an mmseg segmentor."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor.eval()
        pre = segmentor.data_preprocessor
        self.swap = bool(getattr(pre, "channel_conversion", False))
        normalise = bool(getattr(pre, "_enable_normalize", False))
        self.register_buffer("mean", pre.mean.clone() if normalise else torch.zeros(3, 1, 1), persistent=False)
        self.register_buffer("std", pre.std.clone() if normalise else torch.ones(3, 1, 1), persistent=False)
        self.has_region = getattr(segmentor, "region_head", None) is not None

    def forward(self, image: Tensor):
        x = image[:, [2, 1, 0]] if self.swap else image
        x = (x - self.mean) / self.std
        feats = self.segmentor.extract_feat(x)
        size = image.shape[-2:]
        align = self.segmentor.align_corners
        seg = F.interpolate(self.segmentor.decode_head.forward(feats), size=size, mode="bilinear", align_corners=align)
        seg = seg.softmax(dim=1)
        if not self.has_region:
            return seg
        region = F.interpolate(self.segmentor.region_head.forward(feats), size=size, mode="bilinear",
                               align_corners=align)
        return seg, region.softmax(dim=1)


def export_segmentor(config: str | Path, checkpoint: str | Path, out_dir: str | Path,
                     shape: tuple[int, int] = (256, 256), name: str = "segmentor") -> Path:
    """Build the model with ``mmseg.apis.init_model``, convert it, write ``out_dir/<name>.xml``."""
    import openvino as ov
    from mmseg.apis import init_model

    import defect_plugins.seg  # noqa: F401  (registers the ARCD components)

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"export_segmentor: checkpoint {checkpoint} not found")
    model = init_model(str(config), str(checkpoint), device="cpu")
    wrapper = SegmentorExportWrapper(model).eval()
    example = torch.rand(1, 3, *shape) * 255
    with torch.no_grad():
        ov_model = ov.convert_model(wrapper, example_input=example, input=[(1, 3, *shape)])
    names = ["seg_probs", "region_probs"] if wrapper.has_region else ["seg_probs"]
    for output, out_name in zip(ov_model.outputs, names):
        output.get_tensor().set_names({out_name})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        ov.save_model(ov_model, str(Path(tmp) / f"{name}.xml"), compress_to_fp16=False)
        for suffix in (".bin", ".xml"):  # .xml last: its presence means the export is complete
            shutil.move(str(Path(tmp) / f"{name}{suffix}"), str(out_dir / f"{name}{suffix}"))
    return out_dir / f"{name}.xml"


def compile_model(xml: str | Path, precision: str = "f32", device: str = "CPU"):
    """Compile an IR with an explicit ``INFERENCE_PRECISION_HINT`` (``f32`` for parity)."""
    import openvino as ov

    return ov.Core().compile_model(str(xml), device, config={"INFERENCE_PRECISION_HINT": precision})


def parity(xml: str | Path, wrapper: SegmentorExportWrapper, image: Tensor, precision: str = "f32") -> dict[str, float]:
    """Max absolute difference per output between PyTorch and OpenVINO on ``image``."""
    compiled = compile_model(xml, precision)
    with torch.no_grad():
        ref = wrapper(image)
    ref = ref if isinstance(ref, tuple) else (ref,)
    result = compiled(image.numpy())
    out = {}
    for i, r in enumerate(ref):
        got = result[compiled.outputs[i]]
        out[compiled.outputs[i].get_any_name()] = float(np.abs(got - r.numpy()).max())
    return out


def benchmark_latency(xml: str | Path, shape: tuple[int, int], runs: int = 20, warmup: int = 3,
                      precision: str = "f32") -> dict[str, float]:
    """Median and mean single-image latency (ms) of a synchronous request."""
    compiled = compile_model(xml, precision)
    request = compiled.create_infer_request()
    data = (np.random.default_rng(0).random((1, 3, *shape)) * 255).astype(np.float32)
    for _ in range(warmup):
        request.infer([data])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer([data])
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": float(np.median(times)), "mean_ms": float(np.mean(times)), "runs": runs,
            "precision": precision}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export an mmseg / ARCD segmentor to OpenVINO, check parity at "
                                                 "f32 and measure latency.")
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("out_dir")
    parser.add_argument("--shape", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    from mmseg.apis import init_model

    xml = export_segmentor(args.config, args.checkpoint, args.out_dir, tuple(args.shape))
    wrapper = SegmentorExportWrapper(init_model(args.config, args.checkpoint, device="cpu"))
    image = torch.from_numpy((np.random.default_rng(1).random((1, 3, *args.shape)) * 255).astype(np.float32))
    report = {"xml": str(xml), "shape": list(args.shape), "parity_max_abs_diff_f32": parity(xml, wrapper, image),
              "latency_f32": benchmark_latency(xml, tuple(args.shape), args.runs),
              "torch_threads": torch.get_num_threads()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
