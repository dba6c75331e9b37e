"""anomalib datamodule for one folder in the MVTec AD layout, with or without masks.

``ROOT/train/good``, ``ROOT/test/good``, ``ROOT/test/<defect kind>`` and, where pixel labels exist,
``ROOT/ground_truth/<defect kind>`` (what :func:`defect_plugins.data.make_anomaly_dataset` and
``../shared/data/deeppcb_ad`` hold). With ``ground_truth`` this is anomalib's ``MVTecAD`` (category =
the folder's name, so any name works); without it anomalib's ``Folder`` with every ``test/*``
folder but ``good`` as abnormal, which gives image-level metrics only (``mvtec_bottle_256``).

Both score the whole test folder and set thresholds and normalisation on it (anomalib's
``same_as_test`` validation, ``MVTecAD``'s default; ``Folder``'s default would take half of the test
images away for validation, a different half per seed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["mvtec_layout_datamodule"]


def mvtec_layout_datamodule(root: str | Path, *, batch_size: int, seed: int, num_workers: int = 0) -> Any:  # noqa: ANN401
    """``MVTecAD`` when ``root/ground_truth`` exists, else ``Folder``; ``FileNotFoundError`` names a bad ``root``."""
    from anomalib.data import Folder, MVTecAD

    root = Path(root)
    good = root / "train" / "good"
    if not good.is_dir() or not any(good.iterdir()):
        raise FileNotFoundError(f"{root}: expected an MVTec AD layout with images in train/good")
    if not (root / "test").is_dir():
        raise FileNotFoundError(f"{root}: expected a test/ folder (test/good and one folder per defect kind)")
    common = {"train_batch_size": batch_size, "eval_batch_size": batch_size, "num_workers": num_workers,
              "seed": seed}
    if (root / "ground_truth").is_dir():
        return MVTecAD(root=root.parent, category=root.name, **common)
    abnormal = sorted(p.name for p in (root / "test").iterdir() if p.is_dir() and p.name != "good")
    if not abnormal:
        raise FileNotFoundError(f"{root}/test: expected at least one defect folder next to test/good")
    return Folder(name=root.name, root=root, normal_dir="train/good", normal_test_dir="test/good",
                  abnormal_dir=[f"test/{name}" for name in abnormal], val_split_mode="same_as_test", **common)
