"""All-or-nothing output folders.

A data set that stops half-way (bad argument found late, disk full, Ctrl-C)
must not look like a finished one to a training run, so writers fill a
temporary sibling folder and rename it into place only at the very end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from defect_plugins.fileio import replace, temp_sibling

__all__ = ["DataGenerationError", "atomic_output_dir", "check_output_dir"]


class DataGenerationError(ValueError):
    """Bad input for a synthetic data generator (argument value or output path)."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Validate ``out_dir`` without touching the file system; return it as a Path.

    Acceptable: a path that does not exist yet, or an existing empty folder.
    """
    if not isinstance(out_dir, (str, os.PathLike)) or str(out_dir) == "":
        raise DataGenerationError(f"out_dir: expected a non-empty path, got {out_dir!r}")
    out = Path(out_dir).expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise DataGenerationError(f"out_dir: {out} exists and is not a folder")
        try:
            non_empty = any(out.iterdir())
        except OSError as exc:
            raise DataGenerationError(f"out_dir: cannot read {out}: {exc.strerror or exc}") from None
        if non_empty:
            raise DataGenerationError(f"out_dir: {out} exists and is not empty; expected a new or empty folder")
    return out


def _make_parents(parent: Path) -> list[Path]:
    """Create ``parent`` and missing ancestors; return the folders created (outermost first)."""
    missing: list[Path] = []
    probe = parent
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    missing.reverse()
    for folder in missing:
        os.mkdir(folder)
    return missing


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds while still empty


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder next to ``out_dir``; move it to ``out_dir`` on success.

    The temporary folder and the final rename are :func:`defect_plugins.fileio.temp_sibling`
    and :func:`defect_plugins.fileio.replace`, as for every atomic write of the package (no
    ``fsync``: a data set holds thousands of files and can be generated again).

    On any exception the temporary folder (and any parent folders this call
    created) is removed and the exception propagates; ``OSError`` is turned
    into :class:`DataGenerationError` naming the path.
    """
    out = check_output_dir(out_dir)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        try:
            created = _make_parents(out.parent)
            tmp = temp_sibling(out, directory=True)
        except OSError as exc:
            raise DataGenerationError(
                f"out_dir: cannot create {out}: {exc.strerror or exc}"
            ) from None
        yield tmp
        try:
            os.chmod(tmp, 0o777 & ~_current_umask())
            try:
                replace(tmp, out, fsync=False)  # POSIX: atomically replaces an existing empty folder
            except OSError:
                if not out.is_dir():
                    raise
                out.rmdir()  # platforms where rename cannot replace a folder
                replace(tmp, out, fsync=False)
        except OSError as exc:
            raise DataGenerationError(f"out_dir: cannot write {out}: {exc.strerror or exc}") from None
        tmp = None
    except OSError as exc:
        raise DataGenerationError(f"out_dir: cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_created(created)
