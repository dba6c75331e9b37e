"""Parameters and multiply-accumulates of the SARSN ablation models at 64 px (mmengine's analysis tools).

    python experiments/neu_cls/sarsn_complexity.py [--size 64] [--json work_dirs/cls/sarsn_complexity_64.json]
        [--models resnet34 sarsn34-paperstem ...]

Each row is an mmpretrain ``ImageClassifier`` (backbone, global average pooling, linear head, 6
classes), the deployed model, at ``3 x size x size``: mmpretrain's ResNet-34/50 and SE-ResNet-50,
SE-ResNet-34 (``SEResNetBasic``), DRSN-34/50 and SARSN-34/50 with the ImageNet and the paper stem
(RKD-SARSN, Huang et al., Algorithms 16(11):516, 2023, Fig. 6), plus the two other threshold
readings of SARSN-34 (``sarsn_se``, ``delta_alpha``).

Convention: ``mmengine.analysis.get_model_complexity_info`` counts one fused multiply-add as one
operation, so the "FLOPs" it reports, and the ``MACs (G)`` column here, are multiply-accumulates
(the convention of most papers' "GFLOPs"; multiply by 2 for floating-point operations). It counts
convolutions, linear layers, batch norm and adaptive average pooling, not element-wise operations
(ReLU, sigmoid, the thresholds, SE scaling, ``mean(|x|)``), which are a small share here. The table
is printed as markdown and written as JSON (atomically).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_JSON = "work_dirs/cls/sarsn_complexity_64.json"


def _sarsn(depth: int, stem: str = "imagenet", shrinkage: str = "sarsn") -> dict:
    return dict(type="SARSN", depth=depth, stem=stem, shrinkage=shrinkage)


# name -> (backbone config, head input channels)
MODELS_TABLE: dict[str, tuple[dict, int]] = {
    "resnet34": (dict(type="ResNet", depth=34), 512),
    "resnet50": (dict(type="ResNet", depth=50), 2048),
    "seresnet34": (dict(type="SEResNetBasic", depth=34), 512),
    "seresnet50": (dict(type="SEResNet", depth=50), 2048),
    "drsn34": (_sarsn(34, shrinkage="drsn"), 512),
    "drsn50": (_sarsn(50, shrinkage="drsn"), 2048),
    "sarsn34": (_sarsn(34), 512),
    "sarsn34-se": (_sarsn(34, shrinkage="sarsn_se"), 512),
    "sarsn34-deltaalpha": (_sarsn(34, shrinkage="delta_alpha"), 512),
    "sarsn50": (_sarsn(50), 2048),
    "sarsn34-paperstem": (_sarsn(34, stem="paper"), 512),
    "sarsn50-paperstem": (_sarsn(50, stem="paper"), 2048),
}


def model_complexity(name: str, size: int = 64) -> dict[str, Any]:
    """``{'model', 'backbone', 'params_M', 'macs_G', 'size', 'last_stage'}`` of one row of :data:`MODELS_TABLE`."""
    import defect_plugins.cls  # noqa: F401  (registers SARSN, SEResNetBasic)
    from mmpretrain.registry import MODELS

    from experiments.lib.complexity import classifier_complexity

    if name not in MODELS_TABLE:
        raise KeyError(f"unknown model {name!r}: expected one of {list(MODELS_TABLE)}")
    backbone, channels = MODELS_TABLE[name]
    model = MODELS.build(dict(type="ImageClassifier", backbone=dict(backbone, out_indices=(3, )),
                              neck=dict(type="GlobalAveragePooling"),
                              head=dict(type="LinearClsHead", num_classes=6, in_channels=channels)))
    model.eval()
    with torch.no_grad():
        last = model.backbone(torch.zeros(1, 3, size, size))[-1]
    counts = classifier_complexity(model, size)
    return {"model": name, "backbone": dict(backbone), "params_M": counts["params"] / 1e6,
            "macs_G": counts["macs"] / 1e9, "size": size, "last_stage": list(last.shape[1:])}


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table (MACs relative to ResNet-34 when it is among them)."""
    base = next((r["macs_G"] for r in rows if r["model"] == "resnet34"), None)
    lines = ["| model | stem | shrinkage | params (M) | MACs (G) | x ResNet-34 MACs | last stage (C x H x W) |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        b = r["backbone"]
        relative = f"{r['macs_G'] / base:.2f}" if base else "-"
        lines.append(f"| {r['model']} | {b.get('stem', 'imagenet')} | {b.get('shrinkage', '-')} | "
                     f"{r['params_M']:.2f} | {r['macs_G']:.3f} | {relative} | "
                     f"{' x '.join(map(str, r['last_stage']))} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from defect_plugins.fileio import atomic_write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64, help="input side in pixels (default: 64)")
    parser.add_argument("--json", default=DEFAULT_JSON, help=f"where the JSON goes (default: {DEFAULT_JSON})")
    parser.add_argument("--models", nargs="+", default=list(MODELS_TABLE), choices=list(MODELS_TABLE),
                        metavar="NAME", help=f"rows to measure (default: all of {', '.join(MODELS_TABLE)})")
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error(f"--size must be >= 32 (five stride-2 steps of the ImageNet stem), got {args.size}")
    rows = [model_complexity(name, args.size) for name in args.models]
    print(f"Input 3 x {args.size} x {args.size}, 6 classes; MACs = mmengine 'flops' (one multiply-add = 1).\n")
    print(markdown_table(rows))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, {"size": args.size, "convention": "MACs: mmengine get_model_complexity_info flops, "
                            "one multiply-add = 1; element-wise ops not counted", "rows": rows}, indent=2)
    print(f"\njson: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
