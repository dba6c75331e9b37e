"""Accuracy of classifiers on the test split under increasing Gaussian and salt-and-pepper noise.

    python tools/noise_robustness.py \
        --model MGJR configs/mgjr/mgjr_neu_cls_64.py work_dirs/mgjr/e15/mgjr_64/epoch_15.pth \
        --model "MGJR w/o AGTS" configs/mgjr/mgjr_neu_cls_64_no-agts.py work_dirs/mgjr/e15/mgjr_64_no-agts/epoch_15.pth \
        --out work_dirs/mgjr/noise_robustness

Each ``--model NAME CONFIG CHECKPOINT`` is loaded as its student (teacher / projector dropped, so
MGJR, RKD and plain ``ImageClassifier`` configs all work) and evaluated on the config's
``test_dataloader`` data set. The noise is inserted into the test pipeline *after* ``Resize``,
i.e. at the resolution the network sees (noise added at 200x200 and then down-sampled would be
averaged away and flatter the models). Strengths: Gaussian ``sigma`` as a fraction of 0-255,
salt-and-pepper ``amount`` as the fraction of corrupted pixels
(:mod:`defect_plugins.cls.mgjr.noise`). Every model sees exactly the same noisy images (one seed
per level, same order). Top-1 accuracy is mmpretrain's ``Accuracy.calculate``.

Writes ``<out>/noise_robustness.json``, ``<out>/noise_robustness.md`` (table) and
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

DEFAULT_GAUSSIAN = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)
DEFAULT_SALT_PEPPER = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15)
NOISE_TRANSFORMS = {"gaussian": ("AddGaussianNoise", "sigma"), "salt_pepper": ("AddSaltPepperNoise", "amount")}


def _atomic_write(path: Path, data: bytes) -> None:
    """The package's one atomic write (:mod:`defect_plugins.fileio`), folder created first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def noisy_pipeline(pipeline: list, kind: str, strength: float, seed: int) -> list:
    """``pipeline`` with the noise transform inserted after the last ``Resize`` (before packing)."""
    name, key = NOISE_TRANSFORMS[kind]
    out = copy.deepcopy(list(pipeline))
    if strength <= 0:
        return out
    at = max((i for i, t in enumerate(out) if "Resize" in t["type"]), default=0) + 1
    out.insert(at, {"type": name, key: float(strength), "seed": seed})
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


def run(models: list[tuple[str, str, str]], gaussian, salt_pepper, seed: int = 0, limit: int | None = None) -> dict:
    import defect_plugins.cls  # noqa: F401
    from defect_plugins.deploy.families.classifier import load_network as load_student

    results = {"gaussian_sigma": list(gaussian), "salt_pepper_amount": list(salt_pepper), "seed": seed,
               "noise_inserted": "after Resize (at network input resolution)", "models": {}}
    for name, config, checkpoint in models:
        model, cfg = load_student(config, checkpoint)
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        entry = {"config": config, "checkpoint": checkpoint}
        start = time.time()
        for kind, levels in (("gaussian", gaussian), ("salt_pepper", salt_pepper)):
            accs = []
            for level_index, level in enumerate(levels):
                ds = dict(dataset_cfg, pipeline=noisy_pipeline(dataset_cfg.pipeline, kind, level, seed + level_index))
                accs.append(evaluate(model, ds, limit=limit))
                print(f"{name}: {kind} {level:g}: top-1 {accs[-1]:.2f} %", flush=True)
            entry[kind] = accs
        entry["wall_s"] = round(time.time() - start, 1)
        results["models"][name] = entry
    return results


def markdown_table(results: dict) -> str:
    lines = []
    for kind, key, label in (("gaussian", "gaussian_sigma", "Gaussian sigma (x255)"),
                             ("salt_pepper", "salt_pepper_amount", "salt-and-pepper amount")):
        levels = results[key]
        lines.append(f"| top-1 (%) / {label} | " + " | ".join(f"{v:g}" for v in levels) + " |")
        lines.append("|---" * (len(levels) + 1) + "|")
        for name, entry in results["models"].items():
            lines.append(f"| {name} | " + " | ".join(f"{a:.2f}" for a in entry[kind]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (kind, key, label) in zip(axes, (("gaussian", "gaussian_sigma", "Gaussian noise sigma (fraction of 255)"),
                                             ("salt_pepper", "salt_pepper_amount", "salt-and-pepper amount"))):
        for name, entry in results["models"].items():
            ax.plot(results[key], entry[kind], marker="o", label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Accuracy under noise (test split)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    _atomic_write(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs=3, action="append", metavar=("NAME", "CONFIG", "CHECKPOINT"), required=True)
    parser.add_argument("--gaussian", type=float, nargs="+", default=list(DEFAULT_GAUSSIAN))
    parser.add_argument("--salt-pepper", type=float, nargs="+", default=list(DEFAULT_SALT_PEPPER))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test images only")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    for name, config, checkpoint in args.model:
        for path in (config, checkpoint):
            if not os.path.isfile(path):
                print(f"noise_robustness: error: {path} (model {name!r}) not found", file=sys.stderr)
                return 2
    results = run([tuple(m) for m in args.model], args.gaussian, args.salt_pepper, args.seed, args.limit)
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
