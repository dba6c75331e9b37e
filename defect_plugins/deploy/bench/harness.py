"""The child-process harness of ``defect-bench``: each variant is measured in a fresh interpreter.

Peak resident memory is per process, so the parent (which loaded and exported the model) cannot
measure one variant's cost; :func:`run_child` starts ``python -m defect_plugins.deploy.bench.harness
TASK_JSON``, whose :func:`measure_variant` times the variant (:mod:`.timing`), measures its metric
and reports its peak memory (:func:`peak_rss_mb`) as one JSON line on stdout. A ``baseline``
task only imports the libraries, so the parent can subtract what every child pays anyway.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_ANOMALIB_MODEL = "defect_plugins.anomaly.AkfReverseDistillation"


class BenchmarkError(RuntimeError):
    """A benchmark step failed; the message names the family and the step."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    ``VmHWM`` from ``/proc/self/status`` where available: ``getrusage(...).ru_maxrss`` survives
    ``exec`` on Linux, so a child started from a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def measure_variant(task: dict[str, Any]) -> dict[str, Any]:
    """Measure one variant (``baseline``, ``torch``, ``openvino_fp32`` or ``openvino_int8``) as ``task`` says.

    ``task`` (JSON, built by :func:`.cli.benchmark_family`): ``variant``, ``metadata``, ``threads``,
    ``batches``, ``runs``, ``warmup``, ``seconds``, ``eval_dir``, ``eval_limit``, ``config``,
    ``checkpoint``, ``anomalib_model``, ``overhead_dir`` and, for OpenVINO, ``xml``.
    """
    import torch

    threads = task.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    from defect_plugins.imaging import list_images

    from ..export import load_model
    from ..export.evaluation import evaluate
    from ..families import get_family
    from ..metadata import ModelMetadata
    from ..runtime import openvino_predict, read_metadata
    from .timing import inferencer_overhead, openvino_timing, torch_timing

    variant = task["variant"]
    metadata = ModelMetadata.from_dict(task["metadata"])
    size = tuple(metadata.input_size)
    batches = [int(b) for b in task["batches"]]
    result: dict[str, Any] = {"variant": variant}
    if variant == "baseline":
        import openvino  # noqa: F401  (same libraries as the measured children)

        result["peak_rss_mb"] = peak_rss_mb()
        return result
    if variant == "torch":
        loaded = load_model(metadata.family, config=task.get("config"), checkpoint=task["checkpoint"],
                            input_size=size, class_names=metadata.class_names,
                            anomalib_model=task.get("anomalib_model") or DEFAULT_ANOMALIB_MODEL)
        result.update(torch_timing(loaded.module.eval(), size, batches, runs=task["runs"], warmup=task["warmup"]))
        result["peak_rss_mb"] = peak_rss_mb()
        predict = loaded.torch_outputs
    else:
        xml = task["xml"]
        result.update(openvino_timing(xml, size, batches, threads=threads, runs=task["runs"], warmup=task["warmup"],
                                      seconds=task["seconds"]))
        result["inference_precision_hint"] = "f32"
        result["xml"] = xml
        result["ir_precision"] = read_metadata(xml).precision  # proves which export this variant timed
        if task.get("overhead_dir"):  # plain images (the calibration folder): no label maps among them
            images = list_images(task["overhead_dir"])[: min(20, task.get("eval_limit") or 20)]
            result["inferencer"] = inferencer_overhead(xml, images, threads=threads, runs=task["runs"],
                                                       warmup=task["warmup"])
            if get_family(metadata.family).OPTIONAL_REGIONS:  # the regions are optional: both figures
                result["inferencer_class_only"] = inferencer_overhead(xml, images, threads=threads, runs=task["runs"],
                                                                      warmup=task["warmup"], quantify=False)
        result["peak_rss_mb"] = peak_rss_mb()
        predict = openvino_predict(xml, "f32")
    if task.get("eval_dir"):
        metric = evaluate(predict, metadata, task["eval_dir"], limit=task.get("eval_limit"), figures=False)
        result["metric"] = {"name": metric.name, "value": metric.value, "images": metric.num_images}
    return result


def run_child(task: dict[str, Any], timeout: float) -> dict[str, Any]:
    """:func:`measure_variant` of ``task`` in a fresh interpreter (``OMP_NUM_THREADS`` set from ``threads``)."""
    env = dict(os.environ)
    if task.get("threads"):
        env.setdefault("OMP_NUM_THREADS", str(task["threads"]))
    command = [sys.executable, "-m", __name__, json.dumps(task)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(f"{task['variant']} child ran past {timeout} s") from error
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{\"variant\"")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise BenchmarkError(f"{task['variant']} child failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """The child's entry point: ``TASK_JSON`` -> one JSON line with the variant's figures."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m defect_plugins.deploy.bench.harness TASK_JSON (started by defect-bench)",
              file=sys.stderr)
        return 2
    print(json.dumps(measure_variant(json.loads(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
