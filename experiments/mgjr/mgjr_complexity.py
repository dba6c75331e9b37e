"""Parameters and FLOPs of the MGJR student (and its ablations) with mmengine's analysis tools.

    python experiments/mgjr/mgjr_complexity.py [--config configs/mgjr/mgjr_student_neu_cls_64.py] [--size 224]
        [--json work_dirs/mgjr/complexity.json]

Counts are from ``mmengine.analysis.get_model_complexity_info`` on the student classifier
(backbone + neck + head, 6 classes; the teacher and projector exist only for training) at
``3 x size x size``. mmengine counts one fused multiply-add as one FLOP (the convention of the
papers' "GFLOPs", and of the paper's 2.86 G) and counts convolutions, matrix products and
normalisation layers, not element-wise activations. The paper's figures (Meng et al., J.
Industrial Information Integration 48:100958, 2025) are printed beside the measurement. The
abstract does not state the input size of its 2.86 GFLOPs; comparing at 224x224 is this
project's assumption.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))


PAPER_PARAMS_M = 21.14
PAPER_FLOPS_G = 2.86  # input size not stated in the abstract; compared at 224x224 (project's assumption)
DEFAULT_CONFIG = "configs/mgjr/mgjr_student_neu_cls_64.py"
ABLATIONS = {
    "MGJR student (default)": {},
    "no IEMA": dict(use_iema=False),
    "no GL-Attention": dict(gl_stages=()),
    "plain (no IEMA, no GL, no fusion)": dict(use_iema=False, gl_stages=(), fuse_stages=()),
}


def _student_cfg(config: str, backbone_overrides: dict) -> dict:
    import defect_plugins.cls  # noqa: F401
    from mmengine.config import Config

    from defect_plugins.deploy.export.families.classifier import student_model_config

    root = Path(__file__).resolve().parents[2]  # the clone's root: DEFAULT_CONFIG is relative to it
    path = Path(config) if Path(config).is_file() else root / config
    if not path.is_file():
        raise FileNotFoundError(f"config {config} not found")
    cfg = student_model_config(copy.deepcopy(Config.fromfile(str(path)).model))
    cfg["backbone"].update(backbone_overrides)
    return cfg


def student_complexity(size: int = 224, config: str = DEFAULT_CONFIG, backbone_overrides: dict | None = None) -> dict:
    """``{'params_M', 'flops_G', 'size'}`` of the config's student at ``size`` x ``size``."""
    from mmpretrain.registry import MODELS

    from experiments.lib.complexity import classifier_complexity

    counts = classifier_complexity(MODELS.build(_student_cfg(config, backbone_overrides or {})), size)
    return {"params_M": counts["params"] / 1e6, "flops_G": counts["macs"] / 1e9, "size": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for name, overrides in ABLATIONS.items():
        r = student_complexity(args.size, args.config, overrides)
        rows.append({"model": name, **r})
    print(f"| model (input {args.size}x{args.size}) | params (M) | FLOPs (G, mmengine) |")
    print("|---|---|---|")
    print(f"| MGJR student, paper (Meng et al. 2025; input size not stated, 224 assumed) | {PAPER_PARAMS_M:.2f} "
          f"| {PAPER_FLOPS_G:.2f} |")
    for r in rows:
        print(f"| {r['model']} | {r['params_M']:.2f} | {r['flops_G']:.3f} |")
    default = rows[0]
    dp = 100 * (default["params_M"] - PAPER_PARAMS_M) / PAPER_PARAMS_M
    df = 100 * (default["flops_G"] - PAPER_FLOPS_G) / PAPER_FLOPS_G
    print(f"default student vs paper: params {dp:+.1f} %, FLOPs {df:+.1f} % (budget +-10 %, at the assumed 224)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows, "paper": {"params_M": PAPER_PARAMS_M,
                                                                          "flops_G": PAPER_FLOPS_G}}, indent=2) + "\n")
    within = args.size != 224 or (abs(dp) < 10 and abs(df) < 10)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
