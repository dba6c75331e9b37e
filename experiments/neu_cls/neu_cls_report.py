"""Evaluate trained NEU-CLS classifiers the same way and write the figures the results document needs.

For every ``NAME=CONFIG[:CHECKPOINT]`` given:

* with a checkpoint: mmengine ``Runner.test()`` on the config's test split with mmpretrain's own
  metrics (``Accuracy``, ``SingleLabelMetric`` average=None, ``ConfusionMatrix``), the confusion
  matrix drawn by ``ConfusionMatrix.plot`` into ``OUT/<NAME>_confusion.png``;
* always: parameters, FLOPs (``mmengine.analysis``, one image at the config's ``img_size``),
  CPU latency of the PyTorch model (batch 1, ``--threads`` threads) and of its OpenVINO export
  (preprocessing baked in, compiled at f32), and, with a checkpoint, the f32 parity of that
  export on real test images. Without a checkpoint the architecture is measured with random
  weights (latency, FLOPs and parameters do not depend on the weights).

Results go to ``OUT/report.json`` and a markdown table on stdout.

    python experiments/neu_cls/neu_cls_report.py --out work_dirs/cls/report \\
        resnet34=configs/neu_cls/resnet34_neu_cls_64.py:work_dirs/cls/e15/resnet34_neu_cls_64/epoch_15.pth ...
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))

import defect_plugins.cls  # noqa: E402,F401
from defect_plugins.deploy.export import export_model, load_model, parity  # noqa: E402
from defect_plugins.deploy.export.families import classifier as classifier_family  # noqa: E402
from defect_plugins.deploy.export.families.classifier import load_network  # noqa: E402
from defect_plugins.deploy.runtime import compile_model, latency, time_calls  # noqa: E402
from defect_plugins.fileio import atomic_path, atomic_write_json  # noqa: E402
from experiments.lib.complexity import classifier_complexity  # noqa: E402


def _student_cfg(cfg):
    cfg = copy.deepcopy(cfg)
    if cfg.model.get("type") == "RKDClassifier":  # evaluate the student only: checkpoints hold no teacher
        for key in ("teacher_config", "teacher_checkpoint", "distance_weight", "angle_weight", "kd_weight",
                    "temperature"):
            cfg.model.pop(key, None)
        cfg.model.type = "ImageClassifier"
    return cfg


def evaluate(config: str, checkpoint: str, work_dir: Path) -> dict:
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = _student_cfg(Config.fromfile(config))
    cfg.work_dir = str(work_dir)
    cfg.load_from = checkpoint
    cfg.pop("custom_hooks", None)
    runner = Runner.from_cfg(cfg)
    return runner.test()


def torch_latency(model, size: int, runs: int = 30, warmup: int = 3) -> float:
    """Median latency (ms) of the network at batch 1 (the package's one timing loop)."""
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        return time_calls(lambda: model(x, mode="tensor"), runs=runs, warmup=warmup)["p50_ms"]


def measure(name: str, config: str, checkpoint: str | None, out: Path, threads: int) -> dict:
    from mmengine.config import Config
    from mmpretrain.evaluation import ConfusionMatrix
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(config)
    size = int(cfg.get("img_size", 224))
    row: dict = {"name": name, "config": config, "checkpoint": checkpoint, "img_size": size}
    if checkpoint:
        model, _ = load_network(config, checkpoint)
    else:
        scfg = _student_cfg(cfg)
        model_cfg = copy.deepcopy(scfg.model)
        model_cfg.setdefault("data_preprocessor", copy.deepcopy(scfg.get("data_preprocessor")))
        model = MODELS.build(model_cfg)
        model.init_weights()
        model.eval()
    counts = classifier_complexity(model, size)
    row["params_M"] = counts["params"] / 1e6
    row["gflops"] = counts["macs"] / 1e9
    torch.set_num_threads(threads)
    row["torch_cpu_ms"] = torch_latency(model, size)
    if checkpoint:
        loaded = load_model("classifier", config=config, checkpoint=checkpoint, input_size=(size, size))
        xml, _ = export_model("classifier", out / "openvino" / f"{name}.xml", loaded=loaded)
    else:  # random weights: the converted graph is timed without being written
        xml = classifier_family.convert(model, (size, size), dynamic=False)
    one = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    row["openvino_f32_ms"] = latency(compile_model(xml, "f32", num_threads=threads), one, runs=50)["p50_ms"]
    row["threads"] = threads
    if checkpoint:
        metrics = evaluate(config, checkpoint, out / "runs" / name)
        matrix = metrics.pop("confusion_matrix/result")
        classes = list(cfg.get("test_dataloader").dataset.get("metainfo", {}).get("classes", [])) or None
        if classes is None:
            from defect_plugins.data import NEU_CLASSES

            classes = list(NEU_CLASSES)
        figure = ConfusionMatrix.plot(matrix, include_values=True, classes=classes, show=False)
        with atomic_path(out / f"{name}_confusion.png") as tmp:
            figure.savefig(tmp, dpi=80, bbox_inches="tight")
        row["confusion_matrix"] = matrix.tolist()
        row["metrics"] = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in metrics.items()}
        import cv2

        test_list = Path(cfg.test_dataloader.dataset.ann_file).read_text().splitlines()[::90][:6]
        prefix = Path(cfg.test_dataloader.dataset.data_prefix)
        images = np.stack([cv2.resize(cv2.imread(str(prefix / line.rsplit(" ", 1)[0])),
                                      (size, size), interpolation=cv2.INTER_LINEAR) for line in test_list])
        row["openvino_f32_parity_max_abs"] = parity(loaded, xml, images)["probs"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=CONFIG[:CHECKPOINT]")
    parser.add_argument("--out", default="work_dirs/cls/report")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.models:
        name, rest = spec.split("=", 1)
        config, _, checkpoint = rest.partition(":")
        rows.append(measure(name, config, checkpoint or None, out, args.threads))
        atomic_write_json(out / "report.json", rows, indent=2)
    print("| model | top-1 % | macro F1 % | params (M) | GFLOPs | PyTorch CPU ms | OpenVINO f32 ms | parity |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r.get("metrics", {})
        print(f"| {r['name']} | {m.get('accuracy/top1', float('nan')):.2f} | "
              f"{m.get('macro/f1-score', float('nan')):.2f} | "
              f"{r['params_M']:.2f} | {r['gflops']:.3f} | {r['torch_cpu_ms']:.1f} | {r['openvino_f32_ms']:.1f} | "
              f"{r.get('openvino_f32_parity_max_abs', float('nan')):.1e} |")


if __name__ == "__main__":
    main()
