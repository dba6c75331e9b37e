"""Live parameter counts of AKF-RD variants and anomalib's ReverseDistillation.

Counts only the parameters of modules that run in a forward pass
(:func:`defect_plugins.anomaly.params.count_parameters`), so anomalib's unused ``conv4`` /
``bn4`` in RD's ``OCBE`` are not credited to either model. Teachers are built with random
initialisation (``pre_trained=False``): no download, the counts do not depend on the weights.

    python experiments/akf_rd/akf_rd_params.py --backbones resnet18 wide_resnet50_2 [--image-size 256] [--json out.json]
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

VARIANTS = {  # name -> AkfReverseDistillation arguments
    "akf_oce (default)": {"fusion": "akf", "oce": True},
    "akf_oce literal (no lateral conv)": {"fusion": "akf", "oce": True, "akf_lateral": False},
    "akf_oce adaptive": {"fusion": "akf", "oce": True, "akf_weights": "adaptive"},
    "akf_oce adaptive_channels": {"fusion": "akf", "oce": True, "akf_weights": "adaptive_channels"},
    "concat_oce (= RD's OCBE)": {"fusion": "concat", "oce": True},
}


def measure(backbone: str, image_size: int) -> list[dict]:
    """Rows ``{backbone, name, part: {live, total, unused}}`` (parts: encoder, bottleneck, decoder, model) for RD
    and every AKF-RD variant."""
    from anomalib.models import ReverseDistillation

    from defect_plugins.anomaly import AkfReverseDistillation
    from defect_plugins.anomaly.params import count_parameters

    size = (image_size, image_size)
    rows = []
    torch.manual_seed(0)
    rd = ReverseDistillation(backbone=backbone, pre_trained=False, visualizer=False,
                             pre_processor=AkfReverseDistillation.configure_pre_processor(size))
    rows.append({"backbone": backbone, "name": "anomalib ReverseDistillation", **count_parameters(rd.model, size)})
    del rd
    for name, kwargs in VARIANTS.items():
        model = AkfReverseDistillation(backbone=backbone, image_size=size, pre_trained=False, visualizer=False,
                                       **kwargs)
        rows.append({"backbone": backbone, "name": f"AKF-RD {name}", **count_parameters(model.model, size)})
        del model
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "wide_resnet50_2"])
    parser.add_argument("--image-size", type=int, default=256,
                        help="input side for the counting pass (the positional weights scale with it; "
                             "default 256, the paper's)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON (atomically)")
    args = parser.parse_args(argv)
    rows = [row for backbone in args.backbones for row in measure(backbone, args.image_size)]
    print("| backbone | model | bottleneck live / total (M) | model live / total (M) | trainable live (M) "
          "| unused (M) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        b, m = row["bottleneck"], row["model"]
        trainable = row["bottleneck"]["live"] + row["decoder"]["live"]
        print(f"| {row['backbone']} | {row['name']} | {b['live'] / 1e6:.2f} / {b['total'] / 1e6:.2f} | "
              f"{m['live'] / 1e6:.2f} / {m['total'] / 1e6:.2f} | {trainable / 1e6:.2f} | {m['unused'] / 1e6:.2f} |")
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.json, {"image_size": args.image_size, "rows": rows}, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
