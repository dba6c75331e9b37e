"""An exported model's files: read them checked, write them so that a kill never mixes two exports.

* An export is three files (``model.xml``, ``model.bin``, ``model.meta.json``) and three renames
  cannot replace three files at once: an export killed between them used to leave the old
  ``.xml`` beside the new ``.bin`` or sidecar, which loaded with the wrong weights or metadata.
  :func:`save_ir` therefore switches a whole export with ONE rename (below), and
  :func:`read_model` checks the files against the SHA-256 recorded at export
  (:mod:`.metadata`, "Integrity"), refusing a changed or mismatched file with
  :class:`ModelIntegrityError`.

Layout of an export (``save_ir(model, "exp/model.xml", metadata)``), where the platform and the
file system have symbolic links (POSIX)::

    exp/model.xml        -> model.versions/current/model.xml
    exp/model.bin        -> model.versions/current/model.bin
    exp/model.meta.json  -> model.versions/current/model.meta.json
    exp/model.versions/current -> 20260611T101500-3f9a0c1e
    exp/model.versions/20260611T101500-3f9a0c1e/{model.xml, model.bin, model.meta.json}

A new export is written complete (and fsync'ed) into a new version folder, then ``current`` is
repointed by renaming a new link onto it: that rename is the only step that changes what
``exp/model.xml`` is, so a kill at any moment leaves the old export whole or the new one whole.
The version it replaced is removed afterwards. Readers see plain files through the links
(OpenVINO's own ``read_model``, ``benchmark_app``, ``cp``, ``scp`` all follow them), and
:func:`read_model` resolves the links once, so ``.xml``, ``.bin`` and sidecar come from one
version even while a new export switches in. Copy an export folder with its ``model.versions``
(``cp -r exp``, ``rsync -a``; not ``cp -r exp/*.xml``), or copy the two files, which follows the
links. An earlier export in plain files is adopted first: its files are hard-linked (else copied)
into a version folder and the names turned into links one by one, each still showing the old
export, before the new one is switched in.

Without symbolic links (Windows, FAT/exFAT or SMB folders), or with ``save_ir(..., versioned=False)``,
the files are written in place as before: into a temporary folder, then renamed ``.bin``,
sidecar, ``.xml``. A kill between those renames can still pair old and new files, but the hashes
make :func:`read_model` refuse the mixture with a message instead of loading it.

Leftovers: an in-process interruption (exception, ``KeyboardInterrupt``, ``SystemExit``) removes
everything it had written. A killed process (``SIGKILL``, power cut) can only leave hidden
``.tmp-`` entries (:func:`defect_plugins.fileio.is_temporary`) or an unused version folder; the
next :func:`save_ir` to the same path removes them. Two exports to the same path at the same time
are not supported (the last one wins; the first may fail when the second clears its leftovers).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from defect_plugins.fileio import fsync_path, is_temporary, replace, temp_sibling, temp_symlink

from .metadata import (INTEGRITY_KEY, INTEGRITY_RT_INFO_PATH, RT_INFO_PATH, MetadataError, ModelIntegrityError,
                       ModelMetadata, sha256_file, sidecar_path)

VERSIONS_SUFFIX = ".versions"
CURRENT = "current"
_VERSION_NAME = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")  # what _add_version names a version: all it ever removes
# A version folder that is not current is garbage once it is this old: a live save_ir switches to its
# version within seconds of writing it (fsync and two renames), so an older one was left by a kill.
STALE_VERSION_S = 3600.0


# --------------------------------------------------------------------------- reading, checked


def read_model(model: Any):
    """An ``ov.Model`` from a path to ``.xml`` (checked: ``.bin`` next to it, hashes) or an ``ov.Model``.

    A path is resolved once (a versioned export's links, see the module docstring), its files are
    checked with :func:`verify_ir` and OpenVINO reads that ``.xml`` and ``.bin``. Raises
    ``FileNotFoundError`` when a file is missing and :class:`ModelIntegrityError` when a file does
    not match the SHA-256 recorded at export. IRs without recorded hashes (exports older than
    this check, ``anomalib export`` IRs) are read unchecked. An ``ov.Model`` is returned as is.
    """
    import openvino as ov

    if isinstance(model, ov.Model):
        return model
    path = Path(model)
    if path.suffix != ".xml" or not path.is_file() or not path.with_suffix(".bin").is_file():
        raise FileNotFoundError(f"OpenVINO model not found: expected {path} and {path.with_suffix('.bin')}")
    tries = 3
    while True:
        tries -= 1
        xml, weights, sidecar = _resolve_ir(path)
        try:
            _verify(path, xml, weights, sidecar)
            return ov.Core().read_model(str(xml), str(weights))
        except FileNotFoundError:
            # A new export switched in after the links were resolved and removed that version: resolve
            # again (the new version is complete: it was written before the switch).
            if tries == 0 or (xml.is_file() and weights.is_file()):
                raise


def verify_ir(model_xml: str | Path) -> dict[str, str]:
    """Check an IR's files against the SHA-256 recorded at export; return the hashes that were checked.

    Returns ``{}`` for an IR that records none (older exports, ``anomalib export`` IRs): nothing
    to check. Raises :class:`ModelIntegrityError` naming the file, the expected and the found hash.
    """
    path = Path(model_xml)
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        raise FileNotFoundError(f"OpenVINO model not found: expected {path} and {path.with_suffix('.bin')}")
    return _verify(path, *_resolve_ir(path))


def _resolve_ir(path: Path) -> tuple[Path, Path, Path]:
    """``(xml, bin, sidecar)`` with links resolved once, from the same folder where they are together."""
    xml = path.resolve()
    weights = xml.with_suffix(".bin")
    if not weights.is_file():  # the .xml alone is a link elsewhere: use the .bin named next to the path given
        weights = path.with_suffix(".bin").resolve()
    sidecar = sidecar_path(xml)
    if not sidecar.is_file():
        sidecar = sidecar_path(path)
    return xml, weights, sidecar


_RT_INTEGRITY = re.compile(rb'<defect_plugins>(?:(?!</defect_plugins>).)*?<integrity value="([^"]*)"', re.DOTALL)


def _rt_info_integrity(xml_bytes: bytes, xml: Path) -> dict[str, Any]:
    """The ``defect_plugins/integrity`` rt_info record, read from the ``.xml`` text before OpenVINO reads the IR.

    Read as text so that a truncated ``.bin`` is reported as such, not as OpenVINO's error about it.
    """
    found = _RT_INTEGRITY.search(xml_bytes, max(0, xml_bytes.rfind(b"<rt_info>")))
    if found is None:
        return {}
    try:
        record = json.loads(html.unescape(found.group(1).decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelIntegrityError(f"{xml}: its rt_info {'/'.join(INTEGRITY_RT_INFO_PATH)} is not valid JSON "
                                  f"({error}): the file was changed after export") from error
    return record if isinstance(record, dict) else {}


def _sidecar_integrity(sidecar: Path) -> dict[str, Any]:
    if not sidecar.is_file():
        return {}
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8")).get(INTEGRITY_KEY) or {}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise ModelIntegrityError(f"{sidecar}: not a valid metadata file ({error}); expected the JSON that "
                                  f"defect-export writes next to the model") from error
    return record if isinstance(record, dict) else {}


def _verify(shown: Path, xml: Path, weights: Path, sidecar: Path) -> dict[str, str]:
    """Compare the files with every hash recorded for them; ``shown`` is the path the caller gave (for messages)."""
    xml_bytes = xml.read_bytes()
    records = [(f"rt_info of {xml.name}", _rt_info_integrity(xml_bytes, xml)),
               (sidecar.name, _sidecar_integrity(sidecar))]
    found: dict[str, str] = {}
    for key, file in (("xml_sha256", xml), ("bin_sha256", weights)):
        for origin, record in records:
            expected = record.get(key)
            if not expected:
                continue
            if key not in found:
                found[key] = _sha256_bytes(xml_bytes) if file == xml else sha256_file(file)
            if expected != found[key]:
                named = shown.with_suffix(file.suffix)
                named = f"{named} (= {file})" if named.is_symlink() else str(named)
                raise ModelIntegrityError(
                    f"{named} does not match its export: SHA-256 expected {expected} (recorded in the {origin}), "
                    f"found {found[key]} ({file.stat().st_size} bytes). The file was changed after the export or "
                    f"belongs to another export (an interrupted one?): export the model again or restore the file")
    return found


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_metadata(model: Any, *, path: str | Path | None = None) -> ModelMetadata:
    """Metadata of an exported model: from rt_info, else from the ``.meta.json`` sidecar.

    ``model`` is a path to ``.xml`` (read and checked by :func:`read_model`) or an ``ov.Model``
    already read (then ``path`` names its file, for the sidecar and for messages).
    """
    ov_model = read_model(model)
    path = Path(path) if path is not None else (Path(model) if isinstance(model, (str, Path)) else None)
    if ov_model.has_rt_info(RT_INFO_PATH):
        return ModelMetadata.from_json(ov_model.get_rt_info(RT_INFO_PATH).astype(str))
    if path is None or not sidecar_path(path).is_file():
        raise MetadataError(f"{path or 'the model'} carries no defect_plugins metadata (rt_info "
                            f"{'/'.join(RT_INFO_PATH)} or {sidecar_path(path or 'model.xml').name}): "
                            f"not exported by defect-export?")
    return ModelMetadata.from_json(sidecar_path(path).read_text())


def model_size_mb(model_xml: str | Path) -> float:
    """Size on disk of ``.xml`` + ``.bin`` in MB (10^6 bytes)."""
    path = Path(model_xml)
    return (path.stat().st_size + path.with_suffix(".bin").stat().st_size) / 1e6


# --------------------------------------------------------------------------- saving, atomically


def versions_dir(model_xml: str | Path) -> Path:
    """``exp/model.xml`` -> ``exp/model.versions``: where a versioned export keeps its versions."""
    path = Path(model_xml)
    return path.with_name(path.stem + VERSIONS_SUFFIX)


def save_ir(ov_model, out_xml: str | Path, metadata: ModelMetadata, *, compress_to_fp16: bool = False,
            versioned: bool | None = None) -> Path:
    """Write ``out_xml`` + ``.bin`` + ``.meta.json``, replacing an earlier export in one rename; return ``out_xml``.

    The metadata goes into the IR's rt_info and the sidecar, the SHA-256 of the ``.bin`` into the
    rt_info and of both files into the sidecar (:mod:`.metadata`). ``versioned`` (default: where
    symbolic links work) selects the layout of the module docstring; ``False`` writes plain files.
    ``ov_model`` gets the metadata in its rt_info, as the file has it.
    """
    out_xml = Path(out_xml)
    if out_xml.suffix != ".xml":
        raise ValueError(f"output path must end in .xml, got {out_xml}")
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov_model.set_rt_info(metadata.to_json(), RT_INFO_PATH)
    if versioned is None:
        versioned = _symlinks_work(out_xml.parent)
    if versioned:
        _save_versioned(ov_model, out_xml, metadata, compress_to_fp16)
    else:
        _save_in_place(ov_model, out_xml, metadata, compress_to_fp16)
    return out_xml


def _write_ir(ov_model, xml: Path, metadata: ModelMetadata, compress_to_fp16: bool) -> dict[str, str]:
    """Write ``xml``, its ``.bin`` and sidecar (with the hashes) into a folder nobody reads yet; fsync them.

    The ``.bin``'s hash exists only once OpenVINO has written the ``.bin``, and it must be inside
    the ``.xml`` written in the same call: a random 64-hex placeholder goes into the rt_info and is
    replaced in the ``.xml`` text by the hash (same length: nothing else in the file moves). The
    placeholder is set on a clone (constants are shared, not copied), so that the caller's model
    never carries a hash that belongs to one particular file.
    """
    import openvino as ov

    placeholder = secrets.token_hex(32)
    clone = ov_model.clone()
    clone.set_rt_info(json.dumps({"bin_sha256": placeholder}), INTEGRITY_RT_INFO_PATH)
    ov.save_model(clone, str(xml), compress_to_fp16=compress_to_fp16)
    del clone
    weights = xml.with_suffix(".bin")
    integrity = {"bin_sha256": sha256_file(weights)}
    text = xml.read_bytes()
    if text.count(placeholder.encode()) != 1:
        raise RuntimeError(f"{xml}: OpenVINO did not write the rt_info {'/'.join(INTEGRITY_RT_INFO_PATH)} as "
                           f"expected; cannot record the hash of {weights.name}")
    text = text.replace(placeholder.encode(), integrity["bin_sha256"].encode())
    xml.write_bytes(text)
    integrity["xml_sha256"] = _sha256_bytes(text)
    sidecar = sidecar_path(xml)
    sidecar.write_text(json.dumps({**metadata.to_dict(), INTEGRITY_KEY: integrity}, indent=2, sort_keys=True) + "\n",
                       encoding="utf-8")
    for file in (weights, sidecar, xml):
        fsync_path(file)
    return integrity


def _save_in_place(ov_model, out_xml: Path, metadata: ModelMetadata, compress_to_fp16: bool) -> None:
    """Plain files: temporary folder, then ``.bin``, sidecar, ``.xml`` renamed (a mixture is refused on load)."""
    tmp_dir = temp_sibling(out_xml, directory=True)  # ov.save_model writes .xml and .bin: a temporary folder
    try:
        tmp_xml = tmp_dir / out_xml.name
        _write_ir(ov_model, tmp_xml, metadata, compress_to_fp16)
        replace(tmp_xml.with_suffix(".bin"), out_xml.with_suffix(".bin"))
        replace(sidecar_path(tmp_xml), sidecar_path(out_xml))
        replace(tmp_xml, out_xml)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _symlinks_work(folder: Path) -> bool:
    """POSIX and a file system that takes symbolic links (FAT, exFAT and some SMB mounts do not)."""
    if os.name != "posix":  # Windows links need a privilege, and renaming onto a folder link is not atomic there
        return False
    try:
        probe = temp_symlink(folder / "probe", "probe-target")
    except (OSError, NotImplementedError):
        return False
    probe.unlink()
    return True


def _outer_names(out_xml: Path) -> list[Path]:
    """The three names a user sees, ``.xml`` last: once it is a link, the others are too."""
    return [sidecar_path(out_xml), out_xml.with_suffix(".bin"), out_xml]


def _link_text(store: Path, name: Path) -> str:
    return f"{store.name}/{CURRENT}/{name.name}"


def _current(store: Path) -> str | None:
    link = store / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def _save_versioned(ov_model, out_xml: Path, metadata: ModelMetadata, compress_to_fp16: bool) -> None:
    store = versions_dir(out_xml)
    store.mkdir(exist_ok=True)
    _remove_leftovers(out_xml, store)
    _link_names(out_xml, store)  # an earlier export in plain files first becomes a version (shown unchanged)

    def write(stage: Path) -> None:
        _write_ir(ov_model, stage / out_xml.name, metadata, compress_to_fp16)

    _add_version(store, write)


def _add_version(store: Path, write: Callable[[Path], None]) -> None:
    """Fill a new version folder with ``write``, then make it ``current`` in one rename; remove the one it replaces.

    On any interruption before that rename, whatever was written is removed and ``current`` is
    unchanged; after it (an interruption inside ``replace``'s final fsync), the new version stays.
    """
    stage = temp_sibling(store / "version", directory=True)
    version = store / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    previous = _current(store)
    link = None
    try:
        write(stage)
        replace(stage, version)
        link = temp_symlink(store / CURRENT, version.name)
        replace(link, store / CURRENT)  # the switch
    except BaseException:
        if _current(store) == version.name:  # interrupted after the switch: the new version stands
            _remove_version(store, previous, version)
        else:
            for leftover in (stage, version):
                shutil.rmtree(leftover, ignore_errors=True)
        if link is not None and link.is_symlink():
            link.unlink()
        raise
    _remove_version(store, previous, version)


def _remove_version(store: Path, name: str | None, current: Path) -> None:
    """Remove the version ``name`` that ``current`` replaced (a reader that has its files open keeps them)."""
    if name and name != current.name and _VERSION_NAME.fullmatch(name):
        shutil.rmtree(store / name, ignore_errors=True)


def _link_names(out_xml: Path, store: Path) -> None:
    """Make ``model.xml``/``.bin``/``.meta.json`` links into ``store/current``, the export they show staying the same.

    Plain files of an earlier export are hard-linked (else copied) into a version that becomes
    ``current`` first; then each name is replaced by its link, which shows the same file.
    """
    names = _outer_names(out_xml)
    if all(name.is_symlink() and os.readlink(name) == _link_text(store, name) for name in names):
        return
    if out_xml.is_file():  # an earlier export not (entirely) in this layout: keep showing it

        def adopt(stage: Path) -> None:
            for name in names:
                if name.is_file():
                    try:  # resolved: link() on Linux would link a symbolic link itself, not its file
                        os.link(name.resolve(), stage / name.name)
                    except OSError:
                        shutil.copy2(name, stage / name.name)
                    fsync_path(stage / name.name)

        _add_version(store, adopt)
    for name in names:
        if name.is_symlink() and os.readlink(name) == _link_text(store, name):
            continue
        link = temp_symlink(name, _link_text(store, name))
        try:
            replace(link, name)
        except BaseException:
            if link.is_symlink():
                link.unlink()
            raise


def _remove_leftovers(out_xml: Path, store: Path) -> None:
    """What killed processes left: hidden ``.tmp-`` entries, and version folders neither current nor recent.

    Only names this module makes are touched, should ``model.versions`` be someone else's folder.
    """
    current = _current(store)
    for entry in store.iterdir():
        if entry.name == CURRENT or entry.name == current:
            continue
        ours = entry.name.startswith((".version.tmp-", f".{CURRENT}.tmp-")) and is_temporary(entry)
        stale = (_VERSION_NAME.fullmatch(entry.name) is not None and entry.is_dir() and not entry.is_symlink()
                 and time.time() - entry.stat().st_mtime > STALE_VERSION_S)
        if ours or stale:
            _remove(entry)
    prefixes = tuple(f".{name.name}.tmp-" for name in _outer_names(out_xml))
    for entry in out_xml.parent.iterdir():
        if entry.name.startswith(prefixes) and is_temporary(entry):
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass
