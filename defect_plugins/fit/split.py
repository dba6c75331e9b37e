"""One held-out split of a data set into train, calibration and test, made once and written into the bundle.

Why once and written: the threshold is calibrated on the calibration part and the figures on the
model card are measured on the test part; both only mean something if no image of those parts
was trained on. Writing the split (relative paths, JSON) lets anyone check that afterwards, and
reuse it for a later model of the same data.

How, per group (a class, ``good`` or a defect type), so that every part holds every group in
about the given fractions (stratified):

1. the group's paths are made relative to the data root (POSIX form) and sorted: the split does
   not depend on the order the files were listed in;
2. they are permuted with ``numpy.random.default_rng`` (PCG64, O'Neill 2014, whose streams
   numpy keeps identical across platforms and versions), seeded by the split seed *and* a hash of
   the group name: adding or removing a group leaves every other group's assignment as it was;
3. the permuted list is cut into parts of sizes given by the largest remainder method (Hamilton's
   apportionment: each part gets ``floor(fraction * n)``, the files left over go to the parts with
   the largest fractional remainders), then every part with a non-zero fraction gets at least one
   file, taken from the largest part.

Parts with different groups (anomaly fitting trains on defect-free images only, so its defect
types go to calibration and test only) are made by two calls and joined with :meth:`Split.merged`.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from defect_plugins.fileio import atomic_write_json

__all__ = ["PARTS", "Split", "SplitError", "part_sizes", "split_groups"]

PARTS = ("train", "calibration", "test")
FORMAT_VERSION = 1
_SHOWN = 5


class SplitError(ValueError):
    """A split that cannot be made, read or trusted; the message names the group, part, key or file."""


@dataclass
class Split:
    """Which file of which group is in which part; paths are relative to the data root, in POSIX form."""

    seed: int
    parts: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # part -> group -> paths

    def _part(self, part: str) -> dict[str, list[str]]:
        if part not in self.parts:
            raise SplitError(f"no part {part!r} in this split (it has {', '.join(self.parts) or 'none'})")
        return self.parts[part]

    def files(self, part: str, group: str | None = None) -> list[str]:
        """The files of ``part``: of one group, or of all its groups (by group name, then path).

        A group that is in another part but not in this one has no file here (``[]``); a group that
        is in no part at all is an error (a misspelt name should not read as an empty group).
        """
        groups = self._part(part)
        if group is None:
            return [path for name in sorted(groups) for path in groups[name]]
        if group not in groups and not any(group in other for other in self.parts.values()):
            known = sorted({name for other in self.parts.values() for name in other})
            raise SplitError(f"no group {group!r} in this split (groups: {', '.join(known)})")
        return list(groups.get(group, []))

    def groups(self, part: str) -> list[str]:
        """The groups of ``part``, sorted."""
        return sorted(self._part(part))

    def counts(self) -> dict[str, dict[str, int]]:
        """Part -> group -> number of files (for the model card)."""
        return {part: {name: len(paths) for name, paths in sorted(groups.items())}
                for part, groups in self.parts.items()}

    def merged(self, other: Split) -> Split:
        """This split and ``other`` together; they must share the seed and have no group in common.

        A group split twice (once in each) would not be one stratified split of that group, and
        its files could land in two parts, so that is an error.
        """
        if other.seed != self.seed:
            raise SplitError(f"cannot merge splits made with different seeds ({self.seed} and {other.seed})")
        mine = {name for groups in self.parts.values() for name in groups}
        theirs = {name for groups in other.parts.values() for name in groups}
        if mine & theirs:
            raise SplitError(f"cannot merge splits that both hold the group(s) {sorted(mine & theirs)}")
        parts: dict[str, dict[str, list[str]]] = {}
        for part in _ordered({*self.parts, *other.parts}):
            groups = {**self.parts.get(part, {}), **other.parts.get(part, {})}
            parts[part] = {name: list(groups[name]) for name in sorted(groups)}
        return Split(seed=self.seed, parts=parts)

    def verify(self, root: str | Path) -> None:
        """Check that every listed file exists under ``root``; raises :class:`SplitError` naming the missing ones."""
        base = Path(root)
        missing = [path for groups in self.parts.values() for paths in groups.values() for path in paths
                   if not (base / path).is_file()]
        if missing:
            shown = ", ".join(missing[:_SHOWN]) + (f" ... and {len(missing) - _SHOWN} more"
                                                  if len(missing) > _SHOWN else "")
            raise SplitError(f"{len(missing)} file(s) of the split are missing under {base}: {shown}")

    def to_dict(self) -> dict[str, Any]:
        """The split as JSON-ready data: ``{"version", "seed", "parts": {part: {group: [paths]}}}``."""
        return {"version": FORMAT_VERSION, "seed": self.seed,
                "parts": {part: {name: list(paths) for name, paths in groups.items()}
                          for part, groups in self.parts.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "split") -> Split:
        """The split :meth:`to_dict` wrote, checked; ``source`` names it in errors (the file it came from)."""
        if not isinstance(data, Mapping):
            raise SplitError(f"{source}: expected a JSON object with 'seed' and 'parts', got {type(data).__name__}")
        if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise SplitError(f"{source}: 'version' is {data.get('version')!r}, expected {FORMAT_VERSION}")
        seed = data.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SplitError(f"{source}: 'seed' is {seed!r}, expected an integer")
        parts = data.get("parts")
        if not isinstance(parts, Mapping):
            raise SplitError(f"{source}: 'parts' is {type(parts).__name__}, expected an object "
                             f"part -> group -> list of paths")
        checked: dict[str, dict[str, list[str]]] = {}
        seen: dict[str, str] = {}
        for part, groups in parts.items():
            if part not in PARTS:
                raise SplitError(f"{source}: part {part!r} in 'parts', expected one of {', '.join(PARTS)}")
            if not isinstance(groups, Mapping):
                raise SplitError(f"{source}: parts.{part} is {type(groups).__name__}, expected an object "
                                 f"group -> list of paths")
            checked[part] = {}
            for name, paths in groups.items():
                key = f"parts.{part}.{name}"
                if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                    raise SplitError(f"{source}: {key} is not a list of paths (strings)")
                for path in paths:
                    _check_relative(path, f"{source}: {key}")
                    if path in seen:
                        raise SplitError(f"{source}: {path} is listed twice ({seen[path]} and {key})")
                    seen[path] = key
                checked[part][str(name)] = list(paths)
        return cls(seed=seed, parts={part: checked[part] for part in _ordered(checked)})

    def save(self, path: str | Path) -> Path:
        """Write the split as JSON (sorted keys, indented) atomically; return ``path``."""
        return atomic_write_json(path, self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str | Path, *, root: str | Path | None = None) -> Split:
        """Read a split :meth:`save` wrote; with ``root``, also check that its files exist there (:meth:`verify`)."""
        import json

        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SplitError(f"split file {path} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SplitError(f"split file {path} unreadable ({error}); expected the JSON Split.save writes") from None
        split = cls.from_dict(data, source=str(path))
        if root is not None:
            split.verify(root)
        return split


def _ordered(parts: Any) -> list[str]:
    """Part names in PARTS order."""
    return [part for part in PARTS if part in parts]


def _check_relative(path: str, where: str) -> None:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise SplitError(f"{where}: {path!r} is not a relative POSIX path inside the data root")


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    unknown = [part for part in fractions if part not in PARTS]
    if unknown:
        raise SplitError(f"fractions: unknown part(s) {unknown}, expected some of {', '.join(PARTS)}")
    checked = {part: float(fractions[part]) for part in _ordered(fractions)}
    bad = {part: f for part, f in checked.items() if not math.isfinite(f) or f < 0}
    if bad or not any(f > 0 for f in checked.values()):
        raise SplitError(f"fractions {checked}: expected non-negative numbers, at least one positive")
    if not math.isclose(sum(checked.values()), 1.0, rel_tol=0, abs_tol=1e-6):
        raise SplitError(f"fractions {checked} sum to {sum(checked.values()):g}, expected 1")
    return checked


def part_sizes(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """How many of ``n`` files go to each part: largest remainder, then at least one per non-zero part.

    Assumes ``n`` is at least the number of parts with a non-zero fraction (checked by the caller).
    Ties in the remainders go to the earlier part in :data:`PARTS` order.
    """
    quotas = {part: f * n for part, f in fractions.items()}
    sizes = {part: math.floor(q) for part, q in quotas.items()}
    positive = [part for part in fractions if fractions[part] > 0]
    by_remainder = sorted(positive, key=lambda part: -(quotas[part] - sizes[part]))  # stable: PARTS order on ties
    for part in by_remainder[: n - sum(sizes.values())]:
        sizes[part] += 1
    for part in positive:
        if sizes[part] == 0:
            donor = max(positive, key=lambda p: sizes[p])  # has >= 2: n >= len(positive) files over fewer parts
            sizes[donor] -= 1
            sizes[part] = 1
    return sizes


def _group_rng(seed: int, group: str) -> np.random.Generator:
    """PCG64 seeded by the split seed and the group name (SHA-256): one stream per group."""
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng([seed, *words])


def _relative(root: Path, path: Path, group: str) -> str:
    absolute = Path(os.path.abspath(path))  # lexical: a symbolic link inside root stays inside root
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        raise SplitError(f"group {group!r}: {path} is not inside the data root {root}") from None


def split_groups(root: Path, groups: Mapping[str, Sequence[Path]], fractions: Mapping[str, float],
                 seed: int) -> Split:
    """Split each group's files into the parts of ``fractions`` (stratified by group, by file).

    Args:
        root: the data root; every path must lie inside it and is stored relative to it.
        groups: group name (class, ``good``, defect type) -> its files.
        fractions: part (of :data:`PARTS`) -> share of each group's files; non-negative, summing to 1.
            A part with fraction 0 is listed with empty groups.
        seed: non-negative integer; the same inputs and seed always give the same split.

    Raises:
        SplitError: bad fractions or seed, a file outside ``root`` or listed twice, or a group with
            fewer files than parts with a non-zero fraction (each of them needs one).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SplitError(f"seed {seed!r}: expected a non-negative integer")
    checked = _check_fractions(fractions)
    needed = [part for part, f in checked.items() if f > 0]
    base = Path(os.path.abspath(root))
    parts: dict[str, dict[str, list[str]]] = {part: {} for part in checked}
    owner: dict[str, str] = {}
    for group in sorted(groups):
        files = sorted(_relative(base, Path(p), group) for p in groups[group])
        for path in files:
            if path in owner:
                raise SplitError(f"{path} is listed twice (groups {owner[path]!r} and {group!r})")
            owner[path] = group
        if len(files) < len(needed):
            raise SplitError(f"group {group!r} has {len(files)} file(s), expected at least {len(needed)}: one for "
                             f"each of the parts {', '.join(needed)}")
        order = _group_rng(int(seed), group).permutation(len(files))
        start = 0
        for part, size in part_sizes(len(files), checked).items():
            parts[part][group] = sorted(files[i] for i in order[start:start + size])
            start += size
    return Split(seed=int(seed), parts=parts)
