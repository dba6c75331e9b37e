"""The watched folder a camera writes into: its newest images, a name inside it, nothing outside it.

Names are contained (no path parts, symbolic links that leave the folder refused), hidden files
are skipped (cameras write ``.tmp`` names first), and a file is read only up to the station's size
limit, whatever its size on disk.
"""
from __future__ import annotations

from pathlib import Path

from defect_plugins.imaging.files import IMAGE_SUFFIXES

from .errors import StationError


class WatchFolder:
    """``folder`` (resolved once); :class:`StationError` for every refusal, with the HTTP status."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise StationError(400, f"--watch {folder}: not a folder")

    def files(self) -> list[Path]:
        """Image files directly inside the folder, newest first (hidden files skipped: cameras write them)."""
        files = []
        for path in self.folder.iterdir():
            if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                if path.is_file() and path.resolve().parent == self.folder:
                    files.append((path.stat().st_mtime, path.name, path))
            except OSError:
                continue  # removed while listing
        return [path for _, _, path in sorted(files, reverse=True)]

    def newest(self) -> Path:
        files = self.files()
        if not files:
            raise StationError(404, f"no image ({', '.join(IMAGE_SUFFIXES)}) in the watched folder {self.folder}")
        return files[0]

    def file(self, name: str) -> Path:
        """``name`` inside the folder; anything that would leave it is refused."""
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise StationError(400, f"{name!r}: give a file name inside the watched folder, not a path")
        path = (self.folder / name).resolve()
        if path.parent != self.folder:  # a symbolic link pointing out of the folder
            raise StationError(400, f"{name!r}: not inside the watched folder")
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            raise StationError(404, f"{name!r}: no such image in the watched folder")
        return path

    def read(self, path: Path, max_bytes: int) -> bytes:
        """The file's bytes; 413 above ``max_bytes`` (never more than that is read)."""
        try:
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as error:
            raise StationError(400, f"watch:{path.name}: cannot be read ({error.strerror or error})") from error
        if len(data) > max_bytes:
            size = max(len(data), path.stat().st_size if path.exists() else 0)
            raise StationError(413, f"watch:{path.name}: {size / 1e6:.1f} MB is above the station's limit of "
                                    f"{max_bytes / 1e6:g} MB (--max-upload-mb)")
        return data
