"""Accuracy of classifiers on the test split under increasing noise: the training-noise kinds and held-out corruptions.

    python experiments/mgjr/noise_robustness.py \
        --model MGJR configs/mgjr/mgjr_neu_cls_64.py work_dirs/mgjr/mgjr_64/epoch_30.pth \
        --model "noise-aug control" configs/mgjr/mgjr_student_agts-ce_neu_cls_64.py \
            work_dirs/mgjr/agts-ce_64/epoch_30.pth \
        --out work_dirs/mgjr/noise_robustness [--kinds gaussian salt_pepper jpeg ...]

Each ``--model NAME CONFIG CHECKPOINT`` is loaded as its student (teacher / projector dropped, so
MGJR, RKD, the noise-augmentation control and plain ``ImageClassifier`` configs all work) and
evaluated on the config's ``test_dataloader`` data set. The corruption is inserted into the test
pipeline *after* ``Resize``, i.e. at the resolution the network sees (noise added at 200x200 and
then down-sampled would be averaged away and flatter the models). Kinds (:data:`KINDS`), one
implementation each:

* **training-noise kinds** - the corruptions AGTS trains on (:mod:`defect_plugins.cls.mgjr.noise`):
  ``gaussian`` (sigma as a fraction of 0-255), ``salt_pepper`` (fraction of corrupted pixels),
  ``blur`` (Gaussian blur sigma in pixels);
* **held-out corruptions** - never seen in training by any model here
  (:mod:`defect_plugins.cls.mgjr.corruptions`, OpenCV / numpy): ``speckle`` (multiplicative noise
  sigma), ``jpeg`` (JPEG quality, lower is stronger), ``motion_blur`` (kernel length in pixels,
  random angle), ``contrast`` (contrast reduction, 0 = unchanged).

Every model sees exactly the same corrupted images (one seed per kind and level, same image
order). The clean accuracy is evaluated once per model; a level that leaves the image unchanged
(strength 0) reuses it. Top-1 accuracy is mmpretrain's ``Accuracy.calculate``.

Writes ``<out>/noise_robustness.json``, ``<out>/noise_robustness.md`` (tables) and
``<out>/noise_robustness.png`` (plot), each replaced atomically.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

from defect_plugins.fileio import atomic_write_bytes

# kind -> (pipeline transform, its strength argument, default levels, axis label, held out of training?)
KINDS = {
    "gaussian": ("AddGaussianNoise", "sigma", (0.0, 0.02, 0.05, 0.1, 0.15, 0.2), "Gaussian sigma (x255)", False),
    "salt_pepper": ("AddSaltPepperNoise", "amount", (0.0, 0.01, 0.02, 0.05, 0.1, 0.15), "salt-and-pepper amount",
                    False),
    "blur": ("AddGaussianBlur", "sigma", (0.0, 0.5, 1.0, 1.5, 2.0), "Gaussian blur sigma (px)", False),
    "speckle": ("AddSpeckleNoise", "sigma", (0.0, 0.1, 0.2, 0.35, 0.5), "speckle sigma (held out)", True),
    "jpeg": ("JPEGCompression", "quality", (60, 40, 20, 10), "JPEG quality (held out)", True),
    "motion_blur": ("AddMotionBlur", "length", (0, 3, 5, 7, 9), "motion-blur length (px, held out)", True),
    "contrast": ("ReduceContrast", "reduction", (0.0, 0.3, 0.5, 0.7, 0.85), "contrast reduction (held out)", True),
}
TRAINING_KINDS = tuple(k for k, v in KINDS.items() if not v[4])
HELD_OUT = tuple(k for k, v in KINDS.items() if v[4])
DEFAULT_GAUSSIAN = KINDS["gaussian"][2]
DEFAULT_SALT_PEPPER = KINDS["salt_pepper"][2]
NOISE_TRANSFORMS = {kind: (v[0], v[1]) for kind, v in KINDS.items()}
INTEGER_LEVELS = ("jpeg", "motion_blur")


def _atomic_write(path: Path, data: bytes) -> None:
    """The package's one atomic write (:mod:`defect_plugins.fileio`), folder created first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def is_identity(kind: str, strength: float) -> bool:
    """Whether ``strength`` leaves the image unchanged (strength 0; JPEG always re-encodes)."""
    return kind != "jpeg" and strength <= 0


def noisy_pipeline(pipeline: list, kind: str, strength: float, seed: int) -> list:
    """``pipeline`` with the corruption ``kind`` inserted after the last ``Resize`` (before packing)."""
    if kind not in KINDS:
        raise ValueError(f"noise_robustness: unknown kind {kind!r}; expected one of {list(KINDS)}")
    name, key = NOISE_TRANSFORMS[kind]
    out = copy.deepcopy(list(pipeline))
    if is_identity(kind, strength):
        return out
    value = int(strength) if kind in INTEGER_LEVELS else float(strength)
    at = max((i for i, t in enumerate(out) if "Resize" in t["type"]), default=0) + 1
    out.insert(at, {"type": name, key: value, "seed": seed})
    return out


@torch.no_grad()
def evaluate(model, dataset_cfg: dict, batch_size: int = 64, limit: int | None = None) -> float:
    """Top-1 accuracy (%) of ``model`` on the data set described by ``dataset_cfg``."""
    from mmengine.dataset import pseudo_collate
    from mmpretrain.evaluation import Accuracy
    from mmpretrain.registry import DATASETS

    dataset = DATASETS.build(dataset_cfg)
    indices = range(len(dataset) if limit is None else min(limit, len(dataset)))
    preds, targets = [], []
    for start in range(0, len(indices), batch_size):
        batch = pseudo_collate([dataset[i] for i in indices[start:start + batch_size]])
        data = model.data_preprocessor(batch, False)
        preds.append(model(data["inputs"], mode="tensor").argmax(dim=1))
        targets.extend(int(s.gt_label) for s in data["data_samples"])
    # label predictions -> a tensor of one top-1 value (score predictions would give [[top-k]])
    acc = Accuracy.calculate(torch.cat(preds), torch.tensor(targets), topk=(1, ))
    return float(torch.as_tensor(acc).flatten()[0])


def run(models: list[tuple[str, str, str]], levels: dict[str, list[float]], seed: int = 0,
        limit: int | None = None) -> dict:
    """Clean accuracy and accuracy per kind and level of every model (``levels``: kind -> strengths)."""
    import defect_plugins.cls  # noqa: F401  (registers the noise and held-out corruption transforms)
    from defect_plugins.deploy.export.families.classifier import load_network as load_student

    unknown = sorted(set(levels) - set(KINDS))
    if unknown:
        raise ValueError(f"noise_robustness: unknown kinds {unknown}; expected some of {list(KINDS)}")
    results = {"levels": {k: list(v) for k, v in levels.items()}, "held_out": [k for k in levels if KINDS[k][4]],
               "seed": seed, "noise_inserted": "after Resize (at network input resolution)", "models": {}}
    for kind, key in (("gaussian", "gaussian_sigma"), ("salt_pepper", "salt_pepper_amount")):
        if kind in levels:
            results[key] = list(levels[kind])
    for name, config, checkpoint in models:
        model, cfg = load_student(config, checkpoint)
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        entry = {"config": config, "checkpoint": checkpoint}
        start = time.time()
        entry["clean"] = evaluate(model, dataset_cfg, limit=limit)
        print(f"{name}: clean: top-1 {entry['clean']:.2f} %", flush=True)
        for kind_index, (kind, kind_levels) in enumerate(levels.items()):
            accs = []
            for level_index, level in enumerate(kind_levels):
                if is_identity(kind, level):
                    accs.append(entry["clean"])
                    continue
                level_seed = seed + 1000 * kind_index + level_index
                ds = dict(dataset_cfg, pipeline=noisy_pipeline(dataset_cfg.pipeline, kind, level, level_seed))
                accs.append(evaluate(model, ds, limit=limit))
                print(f"{name}: {kind} {level:g}: top-1 {accs[-1]:.2f} %", flush=True)
            entry[kind] = accs
        entry["wall_s"] = round(time.time() - start, 1)
        results["models"][name] = entry
    return results


def markdown_table(results: dict) -> str:
    """One table per kind: a row per model, the clean accuracy then one column per level."""
    lines = []
    for kind, levels in results["levels"].items():
        label = KINDS[kind][3]
        lines.append(f"| top-1 (%) / {label} | clean | " + " | ".join(f"{v:g}" for v in levels) + " |")
        lines.append("|---" * (len(levels) + 2) + "|")
        for name, entry in results["models"].items():
            lines.append(f"| {name} | {entry['clean']:.2f} | " + " | ".join(f"{a:.2f}" for a in entry[kind]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(results["levels"])
    cols = min(4, len(kinds))
    rows = (len(kinds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    for ax, kind in zip(axes.flat, kinds):
        for name, entry in results["models"].items():
            ax.plot(results["levels"][kind], entry[kind], marker="o", label=name)
        ax.set_xlabel(KINDS[kind][3])
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(kinds):]:
        ax.axis("off")
    fig.suptitle("Accuracy under noise and held-out corruptions (test split)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    _atomic_write(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs=3, action="append", metavar=("NAME", "CONFIG", "CHECKPOINT"), required=True)
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS),
                        help=f"kinds to evaluate (default: all; training kinds {list(TRAINING_KINDS)}, held out "
                             f"{list(HELD_OUT)})")
    for kind, (_, _, default, label, _) in KINDS.items():
        parser.add_argument(f"--{kind.replace('_', '-')}", type=int if kind in INTEGER_LEVELS else float, nargs="+",
                            default=list(default), help=f"{label} levels (default {list(default)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test images only")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    for name, config, checkpoint in args.model:
        for path in (config, checkpoint):
            if not os.path.isfile(path):
                print(f"noise_robustness: error: {path} (model {name!r}) not found", file=sys.stderr)
                return 2
    levels = {kind: list(getattr(args, kind)) for kind in args.kinds}
    results = run([tuple(m) for m in args.model], levels, args.seed, args.limit)
    out = Path(args.out)
    table = markdown_table(results)
    print(table)
    _atomic_write(out / "noise_robustness.json", (json.dumps(results, indent=2) + "\n").encode())
    _atomic_write(out / "noise_robustness.md", table.encode())
    plot(results, out / "noise_robustness.png")
    print(f"wrote {out}/noise_robustness.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
