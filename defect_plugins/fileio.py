"""Atomic file writes: a reader sees the old file or the complete new one, never a half-written one.

Every writer fills a temporary sibling of the target (same folder, so the final rename never
crosses a file system; hidden name ``.<name>.tmp-<random><suffix>``, ending in the target's
suffix so that writers which pick the format from the extension, such as ``cv2.imwrite``, still
do), flushes it to disk with ``fsync`` and renames it onto the target with :func:`os.replace`
(atomic on POSIX and Windows). If anything fails before the rename, the temporary file is removed
and the old target, if any, is left untouched.

* :func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_write_json` for content
  that is ready in memory;
* :func:`atomic_path` for writers that want a path (``cv2.imwrite``, ``csv`` writers,
  ``np.save``...): ``with atomic_path(target) as tmp: write(tmp)``;
* :func:`temp_sibling` and :func:`replace` are the two primitives the above are made of, for
  writers that produce several files at once (an OpenVINO IR: ``.xml`` + ``.bin``) or a whole
  folder (:mod:`defect_plugins.data.atomic`). :func:`replace` is the package's only
  ``os.replace``. :func:`temp_symlink` makes a temporary symbolic link to rename onto another one
  (a rename is the only atomic way to change where a link points), and :func:`fsync_path` flushes
  the files of a folder that is about to be renamed into place as a whole.

Only the standard library is imported here.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "fsync_path", "is_temporary",
           "replace", "temp_sibling", "temp_symlink"]

_TEMP_MARK = ".tmp-"


def temp_sibling(path: str | os.PathLike[str], *, directory: bool = False) -> Path:
    """Create and return a new, empty, uniquely named hidden file (or folder) next to ``path``.

    The name is ``.<name>.tmp-<random><suffix>`` (a folder gets no suffix). The file is created
    with ``O_EXCL`` and the usual ``0o666 & ~umask`` permissions, so no other writer can have
    the same name and the renamed result has the permissions a plain ``open(path, "w")`` gives.
    """
    target = Path(path)
    for _ in range(100):
        name = f".{target.name}{_TEMP_MARK}{secrets.token_hex(4)}{'' if directory else target.suffix}"
        candidate = target.with_name(name)
        try:
            if directory:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary file next to {target}")


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """True for a name made by :func:`temp_sibling` or :func:`temp_symlink` (hidden, with ``.tmp-``).

    Such an entry is never a finished result: it belongs to a write in progress or to one that
    was killed before its rename (the only leftovers a kill can cause).
    """
    name = Path(path).name
    return name.startswith(".") and _TEMP_MARK in name


def temp_symlink(path: str | os.PathLike[str], points_to: str | os.PathLike[str]) -> Path:
    """Create and return a new, uniquely named hidden symbolic link next to ``path``, pointing to ``points_to``.

    Named like :func:`temp_sibling` (``.<name>.tmp-<random>``, no suffix: a link has no format);
    ``os.symlink`` never overwrites, so the name is exclusive. ``points_to`` is stored as given
    (relative links stay relative). Renaming the result onto an existing link with
    :func:`replace` repoints that link atomically. Raises ``OSError`` (or
    ``NotImplementedError``) where the platform or the file system has no symbolic links.
    """
    target = Path(path)
    is_dir = (target.parent / points_to).is_dir()  # Windows needs to know; elsewhere ignored
    for _ in range(100):
        candidate = target.with_name(f".{target.name}{_TEMP_MARK}{secrets.token_hex(4)}")
        try:
            os.symlink(points_to, candidate, target_is_directory=is_dir)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary link next to {target}")


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data, or (best effort: not every platform can) a folder's entries, to disk."""
    _fsync_path(Path(path))


def _fsync_path(path: Path) -> None:
    """``fsync`` a file, or (best effort: not every platform can) a folder's entries."""
    if path.is_dir():
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        try:
            fd = os.open(path, flags)
        except OSError:
            return
        try:
            with contextlib.suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)
        return
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, fsync: bool = True) -> Path:
    """Move ``src`` onto ``dst`` atomically (:func:`os.replace`); return ``dst``.

    With ``fsync`` the data of ``src`` is flushed to disk before the rename and the folder entry
    after it, so that after a power cut ``dst`` is either the old file or the complete new one.
    ``src`` should be a sibling of ``dst`` (see :func:`temp_sibling`): a rename cannot cross file
    systems.
    """
    src, dst = Path(src), Path(dst)
    if fsync and not src.is_symlink():  # a link has no data of its own: its folder entry is flushed below
        _fsync_path(src)
    os.replace(src, dst)
    if fsync:
        _fsync_path(dst.parent)
    return dst


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path to write ``path``'s new content into; rename it onto ``path`` on success.

    If the block raises, the temporary file is removed and ``path`` keeps its old content (or
    stays absent); the exception propagates. The temporary file already exists (empty) when the
    block starts; writers that report failure by a return value (``cv2.imwrite`` returns
    ``False``) must raise, or the empty file would replace the target. An existing target's
    permission bits are kept.

    Example::

        with atomic_path(out / "overlay.png") as tmp:
            if not cv2.imwrite(str(tmp), image):
                raise OSError(f"cv2.imwrite could not write {tmp}")
    """
    target = Path(path)
    tmp = temp_sibling(target)
    try:
        yield tmp
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))  # keep an existing file's mode
        replace(tmp, target, fsync=fsync)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8",
                      newline: str | None = None, fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default; ``newline`` as for :func:`open`); return ``path``."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "w", encoding=encoding, newline=newline) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, fsync: bool = True, **json_kwargs: Any) -> Path:
    """Write ``json.dumps(obj, **json_kwargs)`` plus a final newline to ``path`` atomically; return ``path``.

    The object is serialised before anything is written, so an unserialisable object leaves no
    file behind either.
    """
    return atomic_write_text(path, json.dumps(obj, **json_kwargs) + "\n", fsync=fsync)
