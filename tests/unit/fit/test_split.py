"""defect_plugins.fit.split: a stratified, reproducible held-out split, saved and read back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from defect_plugins.fit.split import PARTS, Split, SplitError, part_sizes, split_groups

FRACTIONS = {"train": 0.6, "calibration": 0.2, "test": 0.2}


def files(root: Path, group: str, count: int, *, create: bool = False) -> list[Path]:
    paths = [root / group / f"{i:03d}.png" for i in range(count)]
    if create:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    return paths


def test_same_inputs_same_split_and_the_seed_matters(tmp_path):
    groups = {"good": files(tmp_path, "good", 50), "dent": files(tmp_path, "dent", 20)}
    first = split_groups(tmp_path, groups, FRACTIONS, seed=3)
    again = split_groups(tmp_path, {name: list(reversed(paths)) for name, paths in groups.items()}, FRACTIONS, 3)
    assert first == again  # neither the call nor the order of the listing changes it
    assert split_groups(tmp_path, groups, FRACTIONS, seed=4).parts != first.parts
    assert list(first.parts) == list(PARTS)
    assert first.files("train", "good")[0] == sorted(first.files("train", "good"))[0]
    assert all(not p.startswith("/") and "\\" not in p for p in first.files("test"))


def test_counts_are_stratified_by_group(tmp_path):
    groups = {"good": files(tmp_path, "good", 10), "dent": files(tmp_path, "dent", 7),
              "hole": files(tmp_path, "hole", 100)}
    split = split_groups(tmp_path, groups, FRACTIONS, seed=0)
    assert split.counts() == {"train": {"dent": 4, "good": 6, "hole": 60},
                              "calibration": {"dent": 2, "good": 2, "hole": 20},
                              "test": {"dent": 1, "good": 2, "hole": 20}}
    every = [p for part in PARTS for p in split.files(part)]
    assert sorted(every) == sorted(p.relative_to(tmp_path).as_posix() for g in groups.values() for p in g)
    assert split.groups("test") == ["dent", "good", "hole"]


def test_part_sizes_largest_remainder_and_one_per_part():
    assert part_sizes(7, FRACTIONS) == {"train": 4, "calibration": 2, "test": 1}  # tie in remainders: earlier part
    assert part_sizes(3, {"train": 0.9, "calibration": 0.05, "test": 0.05}) == {"train": 1, "calibration": 1,
                                                                                 "test": 1}
    assert part_sizes(4, {"train": 0.0, "calibration": 0.5, "test": 0.5}) == {"train": 0, "calibration": 2,
                                                                              "test": 2}
    for n in range(3, 60):
        sizes = part_sizes(n, {"train": 0.7, "calibration": 0.15, "test": 0.15})
        assert sum(sizes.values()) == n and min(sizes.values()) >= 1


def test_group_too_small_for_the_parts(tmp_path):
    with pytest.raises(SplitError) as error:
        split_groups(tmp_path, {"good": files(tmp_path, "good", 9), "rare": files(tmp_path, "rare", 2)},
                     FRACTIONS, 0)
    message = str(error.value)
    assert "'rare'" in message and "2 file(s)" in message and "train, calibration, test" in message


def test_adding_a_group_leaves_the_others_unchanged(tmp_path):
    groups = {"good": files(tmp_path, "good", 40), "dent": files(tmp_path, "dent", 12)}
    before = split_groups(tmp_path, groups, FRACTIONS, seed=7)
    after = split_groups(tmp_path, {**groups, "crack": files(tmp_path, "crack", 9)}, FRACTIONS, seed=7)
    for part in PARTS:
        for group in groups:
            assert after.files(part, group) == before.files(part, group)


def test_bad_fractions_seed_and_paths(tmp_path):
    groups = {"good": files(tmp_path, "good", 10)}
    with pytest.raises(SplitError, match="sum to 0.9"):
        split_groups(tmp_path, groups, {"train": 0.7, "test": 0.2}, 0)
    with pytest.raises(SplitError, match="non-negative"):
        split_groups(tmp_path, groups, {"train": 1.2, "test": -0.2}, 0)
    with pytest.raises(SplitError, match="unknown part"):
        split_groups(tmp_path, groups, {"train": 0.5, "val": 0.5}, 0)
    with pytest.raises(SplitError, match="seed"):
        split_groups(tmp_path, groups, FRACTIONS, -1)
    with pytest.raises(SplitError, match="not inside the data root"):
        split_groups(tmp_path / "good", {"x": [tmp_path / "other" / "a.png"] * 3}, FRACTIONS, 0)
    with pytest.raises(SplitError, match="listed twice"):
        split_groups(tmp_path, {"a": groups["good"], "b": groups["good"][:3]}, FRACTIONS, 0)


def test_merged_and_files(tmp_path):
    good = split_groups(tmp_path, {"good": files(tmp_path, "good", 20)}, FRACTIONS, 1)
    defects = split_groups(tmp_path, {"dent": files(tmp_path, "dent", 6)}, {"calibration": 0.5, "test": 0.5}, 1)
    split = good.merged(defects)
    assert split.groups("train") == ["good"] and split.groups("calibration") == ["dent", "good"]
    assert split.files("train", "dent") == []  # known group, not in this part
    assert split.files("calibration") == split.files("calibration", "dent") + split.files("calibration", "good")
    with pytest.raises(SplitError, match="no group 'dnet'"):
        split.files("test", "dnet")
    with pytest.raises(SplitError, match="no part 'val'"):
        split.files("val")
    with pytest.raises(SplitError, match="both hold"):
        split.merged(defects)
    with pytest.raises(SplitError, match="different seeds"):
        good.merged(split_groups(tmp_path, {"dent": files(tmp_path, "dent", 6)}, FRACTIONS, 2))


def test_save_load_round_trip_and_verify(tmp_path):
    data = tmp_path / "data"
    groups = {"good": files(data, "good", 12, create=True), "dent": files(data, "dent", 5, create=True)}
    split = split_groups(data, groups, FRACTIONS, seed=11)
    saved = split.save(tmp_path / "split.json")
    text = saved.read_text()
    assert json.loads(text)["parts"]["test"] == split.parts["test"]
    assert text.index('"parts"') < text.index('"seed"') < text.index('"version"')  # sorted keys
    assert Split.load(saved) == split
    assert Split.load(saved, root=data) == split
    missing = data / split.files("test", "dent")[0]
    missing.unlink()
    with pytest.raises(SplitError, match="1 file") as error:
        Split.load(saved, root=data)
    assert split.files("test", "dent")[0] in str(error.value)


def test_load_refuses_what_it_cannot_trust(tmp_path):
    path = tmp_path / "split.json"
    with pytest.raises(SplitError, match="not found"):
        Split.load(path)
    path.write_text("{not json")
    with pytest.raises(SplitError, match="unreadable"):
        Split.load(path)
    path.write_text(json.dumps({"seed": 0, "parts": {"train": {"good": ["../outside.png"]}}}))
    with pytest.raises(SplitError, match="parts.train.good"):
        Split.load(path)
    path.write_text(json.dumps({"seed": 0, "parts": {"val": {}}}))
    with pytest.raises(SplitError, match="part 'val'"):
        Split.load(path)
    path.write_text(json.dumps({"seed": 0, "parts": {"train": {"a": ["x.png"]}, "test": {"b": ["x.png"]}}}))
    with pytest.raises(SplitError, match="listed twice"):
        Split.load(path)
    with pytest.raises(SplitError, match="'seed'"):
        Split.from_dict({"seed": "1", "parts": {}})
