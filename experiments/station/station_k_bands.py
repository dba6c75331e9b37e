"""Per-class K and area ratio of the paper's segmentation chain on a folder of class folders.

    python experiments/station/station_k_bands.py ../shared/data/neu_cls [--limit 300] [--json k_bands.json]

For every ``DATA/<class>/*`` image: the RKD-SARSN chain (:mod:`defect_plugins.imaging.paper_segmentation`:
grey, bilateral filter, contrast stretch, Otsu, opening + closing) and the per-image totals of
Table 7 (:func:`defect_plugins.imaging.quantify.image_totals`; Huang et al., Algorithms 16(11):516,
2023, section 3.2). Prints the median and the 10th / 90th percentiles of K (1/pixel, at the images'
own resolution) and of the area ratio per class, the figures a line needs to set the ``k`` and
``area_ratio`` conditions of its ``defect-station`` rule file (the default file's comments quote
this tool's output on NEU-CLS). numpy and OpenCV only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from defect_plugins.imaging import ImageReadError, list_images, read_bgr
from defect_plugins.imaging.paper_segmentation import PaperSegmentation, segment_defects
from defect_plugins.imaging.quantify import quantify_mask


def class_figures(folder: Path, limit: int | None, settings: PaperSegmentation, min_area: int) -> dict:
    """K and area-ratio percentiles of the images of one class folder."""
    ks, ratios, sides, unreadable = [], [], set(), 0
    for path in list_images(folder)[:limit]:
        try:
            image = read_bgr(path)
        except ImageReadError:
            unreadable += 1
            continue
        totals = quantify_mask(segment_defects(image, settings).mask, min_area=min_area).totals
        ks.append(totals.k)
        ratios.append(totals.area_ratio)
        sides.add(f"{image.shape[0]}x{image.shape[1]}")
    if not ks:
        return {"images": 0, "unreadable": unreadable}

    def spread(values: list[float]) -> dict[str, float]:
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return {"p10": round(float(p10), 4), "median": round(float(p50), 4), "p90": round(float(p90), 4)}

    return {"images": len(ks), "unreadable": unreadable, "sizes": sorted(sides), "k": spread(ks),
            "area_ratio": spread(ratios)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="folder of class folders (NEU-CLS layout)")
    parser.add_argument("--limit", type=int, help="images per class (default: all)")
    parser.add_argument("--min-area", type=int, default=4, help="ignore regions smaller than this (pixels)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    classes = sorted(p for p in args.data.iterdir() if p.is_dir()) if args.data.is_dir() else []
    if not classes:
        print(f"station_k_bands: {args.data} holds no class folders", file=sys.stderr)
        return 1
    settings = PaperSegmentation()
    figures = {folder.name: class_figures(folder, args.limit, settings, args.min_area) for folder in classes}
    print(f"{'class':<18}{'images':>7}  {'K p10 / median / p90 (1/px)':<30}{'area ratio p10 / median / p90'}")
    for name, row in figures.items():
        if not row["images"]:
            print(f"{name:<18}{0:>7}  (no readable image)")
            continue
        k, ratio = row["k"], row["area_ratio"]
        print(f"{name:<18}{row['images']:>7}  {k['p10']:.3f} / {k['median']:.3f} / {k['p90']:.3f}{'':<9}"
              f"{ratio['p10']:.2f} / {ratio['median']:.2f} / {ratio['p90']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"settings": settings.__dict__, "min_area": args.min_area,
                                         "classes": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
