"""The configs shipped inside the package, found by name as well as by path.

The anomalib YAMLs and the OpenMMLab Python configs live in ``defect_plugins/configs/`` so that
they travel with the wheel (OpenMMLab ships its own in ``<package>/.mim/configs``); a clone keeps
a ``configs -> defect_plugins/configs`` link at its root, so every ``configs/...`` path in the
README works there as before. Outside a clone a config is asked for by its packaged name::

    defect-configs list                              # every packaged config
    defect-configs path akf_rd.yaml                  # absolute path, for tools that want a file
    anomalib train --config "$(defect-configs path akf_rd.yaml)"
    defect-configs copy mgjr/mgjr_neu_cls_64.py my_configs/   # a copy to edit, with its _base_ files
    defect-train mmpretrain neu_cls/sarsn34_neu_cls_64.py            # launchers take names too

Only the standard library is imported here: a runtime-only install (OpenVINO without torch or
mmengine) may import this module too.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import os
import shutil
import sys
from pathlib import Path, PurePosixPath
from typing import Sequence

CONFIG_SUFFIXES = (".py", ".yaml", ".yml", ".json")
PACKAGED_PREFIX = "configs/"

__all__ = [
    "CONFIG_SUFFIXES",
    "ConfigNotFoundError",
    "config_root",
    "copy_config",
    "list_configs",
    "main",
    "resolve_config",
]


class ConfigNotFoundError(FileNotFoundError, ValueError):
    """A config asked for by path or name matches neither an existing file nor one packaged config.

    It is a :class:`FileNotFoundError` (nothing to open) and a :class:`ValueError` (a bad
    argument), so callers catching either one see it.
    """


def config_root() -> Path:
    """Folder holding the packaged configs (``defect_plugins/configs`` of this installation)."""
    return Path(__file__).resolve().parent / "configs"


def list_configs(include_bases: bool = True) -> list[str]:
    """Sorted names (POSIX, relative to :func:`config_root`) of every packaged config file.

    ``include_bases=False`` leaves out the ``_base_`` fragments, which are only meant to be
    inherited, not trained from.
    """
    root = config_root()
    if not root.is_dir():
        return []
    names = []
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix not in CONFIG_SUFFIXES:
            continue
        relative = path.relative_to(root)
        if "__pycache__" in relative.parts or (not include_bases and "_base_" in relative.parts):
            continue
        names.append(relative.as_posix())
    return sorted(names)


def _packaged_name(name: str) -> str:
    """``configs/neu_cls/x.py`` / ``defect_plugins/configs/neu_cls/x.py`` / ``./x`` -> ``neu_cls/x.py``."""
    posix = str(PurePosixPath(name.replace("\\", "/")))
    for prefix in ("defect_plugins/" + PACKAGED_PREFIX, PACKAGED_PREFIX):
        if posix.startswith(prefix):
            return posix[len(prefix):]
    return posix


def _close_names(name: str, names: Sequence[str], limit: int = 5) -> list[str]:
    """Packaged names resembling ``name``: by full name, then by file name, then by substring."""
    found = difflib.get_close_matches(name, names, n=limit, cutoff=0.5)
    base = PurePosixPath(name).name
    by_file = {PurePosixPath(n).name: n for n in names}
    for match in difflib.get_close_matches(base, list(by_file), n=limit, cutoff=0.5):
        if by_file[match] not in found:
            found.append(by_file[match])
    stem = PurePosixPath(name).stem
    if stem:
        found += [n for n in names if stem in n and n not in found]
    return found[:limit]


def resolve_config(name_or_path: str | os.PathLike) -> Path:
    """Path of a config given as a file path or as a packaged name.

    Order, so that a user's own file is never shadowed: an existing file at ``name_or_path``
    wins; else a packaged config named ``neu_cls/x.py``, ``configs/neu_cls/x.py`` (the
    repo-relative spelling configs use to name a teacher) or a bare ``x.py`` when exactly one
    packaged config has that file name. Anything else raises :class:`ConfigNotFoundError`
    naming what was asked and the closest packaged names.
    """
    asked = os.fspath(name_or_path)
    if not asked:
        raise ConfigNotFoundError("empty config name: expected a config file path or a packaged name "
                                  "(see `defect-configs list`)")
    path = Path(asked).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigNotFoundError(f"config {asked} is a folder: expected a config file "
                                  f"(packaged ones: `defect-configs list`)")
    root = config_root()
    name = _packaged_name(asked)
    names = list_configs()
    if name in names:
        return root / name
    if "/" not in name:
        same_file = [n for n in names if PurePosixPath(n).name == name]
        if len(same_file) == 1:
            return root / same_file[0]
        if len(same_file) > 1:
            raise ConfigNotFoundError(f"config {asked} is ambiguous: packaged configs "
                                      f"{', '.join(same_file)} share that file name; give one of these names")
    close = _close_names(name, names)
    hint = f"; closest packaged configs: {', '.join(close)}" if close else ""
    raise ConfigNotFoundError(
        f"config {asked} not found: no such file, and no packaged config of that name under {root}{hint} "
        f"(all of them: `defect-configs list`)")


def _relative_bases(config: Path) -> list[Path]:
    """Files a Python config inherits by relative ``_base_`` path (``mmseg::`` style bases are skipped).

    Read with :mod:`ast`, not executed: this module must not need mmengine.
    """
    if config.suffix != ".py":
        return []
    try:
        tree = ast.parse(config.read_text(), filename=str(config))
    except SyntaxError as error:
        raise ConfigNotFoundError(f"config {config} is not valid Python ({error.msg}, line {error.lineno})") from error
    bases: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            bases += [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return [(config.parent / base).resolve() for base in bases if "::" not in base]


def copy_config(name_or_path: str | os.PathLike, dest: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Copy a config, and the packaged ``_base_`` files it inherits, into the folder ``dest``.

    Why the bases too: ``./_base_/x.py`` and ``../neu_cls/_base_/x.py`` are relative to the
    config, so a lone copy would not load. A packaged config keeps its place in the packaged
    tree (``neu_cls/x.py`` -> ``DEST/neu_cls/x.py``, bases beside it); any other file lands
    as ``DEST/<file name>``. Files already there with the same content are left alone; a
    differing one raises :class:`FileExistsError` unless ``overwrite``. Returns the copied
    config first, then its bases.
    """
    source = resolve_config(name_or_path).resolve()
    target_root = Path(dest).expanduser()
    if target_root.exists() and not target_root.is_dir():
        raise FileExistsError(f"destination {target_root} is a file: expected a folder to copy the config into")
    root = config_root()
    if not source.is_relative_to(root):
        plan = [(source, target_root / source.name)]
    else:
        plan, todo, seen = [], [source], set()
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            if not current.is_file():
                raise ConfigNotFoundError(f"{source} inherits {current}, which is not in the package")
            if current.is_relative_to(root):  # a base outside the packaged tree is left where it is
                plan.append((current, target_root / current.relative_to(root)))
                todo += _relative_bases(current)
    for src, dst in plan:
        if dst.exists() and dst.read_bytes() != src.read_bytes() and not overwrite:
            raise FileExistsError(f"{dst} exists and differs from {src}: not overwriting it "
                                  f"(remove it, pick another folder, or pass --force)")
    for src, dst in plan:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return [dst for _, dst in plan]


def main(argv: Sequence[str] | None = None) -> int:
    """``defect-configs {list,path,copy}``: find the packaged configs from a shell."""
    parser = argparse.ArgumentParser(
        prog="defect-configs",
        description="List, locate or copy the configs shipped with defect-plugins.",
        epilog="e.g. anomalib train --config \"$(defect-configs path akf_rd.yaml)\"")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,path,copy}")
    listing = commands.add_parser("list", help="print every packaged config name")
    listing.add_argument("--bases", action="store_true", help="include the _base_ fragments")
    locate = commands.add_parser("path", help="print the absolute path of a config (name or path)")
    locate.add_argument("name")
    copy = commands.add_parser("copy", help="copy a config and the _base_ files it inherits into the folder DEST")
    copy.add_argument("name")
    copy.add_argument("dest")
    copy.add_argument("--force", action="store_true", help="overwrite files in DEST that differ")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name in list_configs(include_bases=args.bases):
                print(name)
        elif args.command == "path":
            print(resolve_config(args.name).resolve())
        else:
            for path in copy_config(args.name, args.dest, overwrite=args.force):
                print(path)
    except (ConfigNotFoundError, FileExistsError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
