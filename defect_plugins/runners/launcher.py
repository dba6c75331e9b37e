"""Run an OpenMMLab toolkit's own ``tools/train.py`` / ``tools/test.py`` with the plugin loaded.

This is what ``mim train`` / ``mim test`` do (find ``<package>/.mim/tools/<script>.py`` and run
it), without openmim, which cannot be installed next to torch and anomalib (its openxlab
dependency pins setuptools 60 and rich 13.4). Importing this module first applies
the compatibility fixes *before* the config is parsed, which matters for configs whose
``_base_`` is ``mmpretrain::...`` or ``mmseg::...`` (``custom_imports`` runs too late for that).

Console commands (one process, or GPUS processes per node through ``torch.distributed.run``)::

    defect-train {mmpretrain,mmseg} CONFIG [GPUS | --nproc N] [train.py args...]
    defect-test  {mmpretrain,mmseg} CONFIG CHECKPOINT [GPUS | --nproc N] [test.py args...]

``--nproc N`` is the named form of GPUS (the name ``defect-fit`` uses; on a machine without CUDA the
processes share the CPU through gloo, :mod:`defect_plugins.compat.distributed_cpu`).

Across nodes, as OpenMMLab's ``dist_train.sh``: ``NNODES``, ``NODE_RANK``, ``MASTER_ADDR`` and
``PORT`` (defaults 1, 0, 127.0.0.1, 29500). CONFIG is a file path or a packaged config name
(``neu_cls/sarsn34_neu_cls_64.py``, see ``defect-configs list``). The same without the console
scripts on PATH (what ``tools/mim_train.sh`` / ``tools/mim_test.sh`` exec)::

    python -m defect_plugins.runners.launcher launch {train,test} TOOLKIT CONFIG [CHECKPOINT] [GPUS] [args...]

One process, no GPUS handling (what each ``torch.distributed.run`` worker runs)::

    python -m defect_plugins.runners.launcher {train,test} TOOLKIT CONFIG [script args...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NoReturn, Sequence

if __name__ == "__main__" and "TORCHELASTIC_RUN_ID" in os.environ:
    # a torch.distributed.run worker: end with its agent (never an orphan training), before the slow imports below
    from defect_plugins.runners.process import die_with_parent_now

    die_with_parent_now()

from defect_plugins.compat import apply_all  # noqa: E402
from defect_plugins.compat.package_lookup import get_installed_path  # noqa: E402
from defect_plugins.packaged_configs import ConfigNotFoundError, resolve_config  # noqa: E402

apply_all()  # before any config is parsed (``mmseg::`` bases need the package_lookup fix)

TOOLKITS = {"mmpretrain": "mmpretrain", "mmseg": "mmseg", "mmsegmentation": "mmseg"}
SCRIPTS = ("train", "test")
_GPUS = re.compile(r"[0-9]+")


class LauncherError(RuntimeError):
    """A launch request that cannot be carried out (unknown toolkit, missing script or config)."""


@dataclass(frozen=True)
class DistributedSettings:
    """Where this node sits in a multi-node run (``torch.distributed.run`` rendezvous)."""

    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    port: int = 29500

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "DistributedSettings":
        """Read ``NNODES``, ``NODE_RANK``, ``MASTER_ADDR`` and ``PORT`` (OpenMMLab's ``dist_train.sh`` names)."""
        env = os.environ if environ is None else environ

        def integer(key: str, default: int, minimum: int) -> int:
            text = env.get(key, "")
            if text == "":
                return default
            if not text.isdigit() or int(text) < minimum:
                raise LauncherError(f"environment variable {key}={text!r}: expected an integer >= {minimum}")
            return int(text)

        settings = cls(nnodes=integer("NNODES", 1, 1), node_rank=integer("NODE_RANK", 0, 0),
                       master_addr=env.get("MASTER_ADDR") or "127.0.0.1", port=integer("PORT", 29500, 1))
        if settings.node_rank >= settings.nnodes:
            raise LauncherError(f"NODE_RANK={settings.node_rank} with NNODES={settings.nnodes}: "
                                f"expected 0 <= NODE_RANK < NNODES")
        if settings.port > 65535:
            raise LauncherError(f"environment variable PORT={settings.port}: expected a TCP port (1-65535)")
        return settings


def upstream_script(toolkit: str, script: str) -> Path:
    """Path of ``<toolkit>/.mim/tools/<script>.py`` as installed by pip."""
    if toolkit not in TOOLKITS:
        raise LauncherError(f"unknown toolkit {toolkit!r}: expected one of {sorted(TOOLKITS)}")
    if script not in SCRIPTS:
        raise LauncherError(f"unknown script {script!r}: expected one of {SCRIPTS}")
    package_dir = Path(get_installed_path(TOOLKITS[toolkit]))
    path = package_dir / ".mim" / "tools" / f"{script}.py"
    if not path.is_file():
        raise LauncherError(f"{path} not found: is {TOOLKITS[toolkit]} installed from its wheel?")
    return path


def find_config(config: str | os.PathLike) -> Path:
    """A config path or packaged name as a path; :class:`LauncherError` naming it when it is neither."""
    try:
        return resolve_config(config)
    except ConfigNotFoundError as error:
        raise LauncherError(str(error)) from None


def distributed_command(script: str, toolkit: str, config: str | os.PathLike, gpus: int,
                        script_args: Sequence[str] = (), *, settings: DistributedSettings | None = None,
                        python: str | None = None) -> list[str] | None:
    """The ``torch.distributed.run`` command for ``gpus`` processes on this node, or ``None`` for one process.

    Each worker runs the one-process form of this module with ``--launcher pytorch`` appended,
    as OpenMMLab's ``dist_train.sh`` does; ``None`` means a single process on a single node,
    which needs no rendezvous at all.
    """
    settings = settings or DistributedSettings.from_env()
    if gpus < 1:
        raise LauncherError(f"GPUS={gpus}: expected the number of processes per node, at least 1")
    if gpus == 1 and settings.nnodes == 1:
        return None
    return [
        python or sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={settings.nnodes}", f"--node_rank={settings.node_rank}", f"--master_addr={settings.master_addr}",
        f"--nproc_per_node={gpus}", f"--master_port={settings.port}",
        "-m", "defect_plugins.runners.launcher", script, toolkit, os.fspath(config), *script_args,
        "--launcher", "pytorch",
    ]


def run_script(script: str, toolkit: str, config: str | os.PathLike, script_args: Sequence[str] = ()) -> None:
    """Run the toolkit's ``tools/<script>.py`` in this process, as ``python <script>.py CONFIG args...`` would."""
    path = upstream_script(toolkit, script)
    config_path = find_config(config)
    sys.argv = [str(path), os.fspath(config_path), *script_args]
    runpy.run_path(str(path), run_name="__main__")


def _exec(command: list[str]) -> int:
    """Replace this process by ``command`` (signals and exit status then belong to it, as with ``exec``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(command[0], command)
    return subprocess.call(command)  # pragma: no cover  (no exec on Windows)


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def _parse_head(parser: argparse.ArgumentParser, argv: Sequence[str],
                count: int) -> tuple[argparse.Namespace, list[str]]:
    """Parse the first ``count`` positionals with ``parser``; everything after belongs to the upstream script.

    Why not ``parse_known_args``: the upstream script's own options (``--work-dir``, ``-h``,
    abbreviations) must reach it untouched, not be matched by this parser.
    """
    argv = list(argv)
    head = argv[:count]
    if len(head) < count or any(arg.startswith("-") for arg in head):
        parser.parse_args(argv)  # prints usage / help and exits; only a malformed head gets here
        _fail(parser, f"expected {count} positional arguments first, got {head}")
    return parser.parse_args(head), argv[count:]


def _launch_parser(script: str, prog: str) -> argparse.ArgumentParser:
    checkpoint = " CHECKPOINT" if script == "test" else ""
    parser = argparse.ArgumentParser(
        prog=prog, allow_abbrev=False,
        usage=f"{prog} {{mmpretrain,mmseg}} CONFIG{checkpoint} [GPUS | --nproc N] [{script}.py args...]",
        description=f"Run {'training' if script == 'train' else 'evaluation'} with the toolkit's own "
                    f"tools/{script}.py and the defect_plugins fixes loaded: one process, or GPUS (--nproc N) "
                    f"processes per node (NNODES, NODE_RANK, MASTER_ADDR, PORT for several nodes).",
        epilog=f"e.g. {prog} mmpretrain neu_cls/sarsn34_neu_cls_64.py{' CKPT.pth' if checkpoint else ''} 2 "
               f"--work-dir work_dirs/sarsn34   (packaged configs: defect-configs list)")
    parser.add_argument("toolkit", choices=sorted(TOOLKITS), help="the OpenMMLab toolkit whose tools/ script runs")
    parser.add_argument("config", help="config file path or packaged config name")
    if checkpoint:
        parser.add_argument("checkpoint", help="checkpoint (.pth) to evaluate")
    return parser


_RUN_FOLDER = re.compile(r"\d{8}_\d{6}")  # mmengine names each run's log folder by its start time


def read_logged_scalars(work_dir: str | os.PathLike, key: str, extra: Sequence[str] | None = ()) -> dict[str, float]:
    """``key`` (and ``extra`` keys) of the last record holding ``key`` in the newest run's ``scalars.json``.

    ``extra=None`` returns every figure of that record (the numeric ones).

    mmengine's ``LocalVisBackend`` writes one JSON line per logged step under
    ``work_dir/<timestamp>/vis_data/scalars.json``; a resumed run starts a new timestamp folder, so
    the newest folder holds the final validation. Only that folder is read: an older one holds an
    earlier run's records, which would pass for the final figures. Missing ``extra`` keys are NaN.
    """
    runs = sorted(p for p in Path(work_dir).glob("*") if p.is_dir() and _RUN_FOLDER.fullmatch(p.name))
    if not runs:
        raise LauncherError(f"no mmengine run folder (<YYYYmmdd_HHMMSS>/) under {work_dir}: did the training start?")
    scalars = runs[-1] / "vis_data" / "scalars.json"
    if not scalars.is_file():
        raise LauncherError(
            f"{scalars} is missing: the newest run logged nothing. A run resumed from its final checkpoint validates "
            "only with ResumedFinalValidationHook (in the packaged configs; elsewhere add "
            "--cfg-options default_hooks.final_validation.type=ResumedFinalValidationHook)")
    found: dict[str, float] | None = None
    for line in scalars.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if key in record and extra is None:
            found = {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        elif key in record:
            found = {k: float(record.get(k, float("nan"))) for k in (key, *extra)}
    if found is None:
        raise LauncherError(f"{scalars} holds no {key} record")
    return found


def resumable_train_command(toolkit: str, config: str | os.PathLike, work_dir: str | os.PathLike,
                            cfg_options: Sequence[str] = (), *, nproc: int = 1) -> list[str]:
    """``defect-train TOOLKIT CONFIG [--nproc N] --work-dir W [--resume] [--cfg-options ...]`` as the module form.

    ``--resume`` when mmengine recorded a checkpoint in ``W/last_checkpoint``, so a training cut off
    goes on from its last checkpoint (the one place that decides it: ``defect-fit``, ``defect-teacher`` and
    the studies in a clone's ``experiments/`` use it). ``nproc`` > 1 runs that many processes on this
    machine through ``torch.distributed.run`` (:func:`distributed_command`; several machines: the
    ``NNODES`` ... variables in the child's environment); rank 0 writes the checkpoints.
    """
    if nproc < 1:
        raise LauncherError(f"--nproc {nproc}: expected the number of processes per node, at least 1")
    run_dir = Path(work_dir)
    command = [sys.executable, "-m", "defect_plugins.runners.launcher", "launch", "train", toolkit, str(config),
               *(["--nproc", str(nproc)] if nproc > 1 else []), "--work-dir", str(run_dir)]
    if (run_dir / "last_checkpoint").is_file():
        command.append("--resume")
    if cfg_options:
        command += ["--cfg-options", *cfg_options]
    return command


def _pop_nproc(rest: list[str]) -> int | None:
    """Take ``--nproc N`` / ``--nproc=N`` out of the upstream script's arguments; ``None`` when absent.

    The toolkits' ``tools/train.py`` and ``tools/test.py`` have no ``--nproc`` option, so it can only be ours.
    """
    for index, arg in enumerate(rest):
        if arg == "--nproc":
            if index + 1 >= len(rest):
                raise LauncherError("--nproc: expected the number of processes per node")
            value = rest[index + 1]
            del rest[index:index + 2]
        elif arg.startswith("--nproc="):
            value = arg.split("=", 1)[1]
            del rest[index]
        else:
            continue
        if not _GPUS.fullmatch(value) or int(value) < 1:
            raise LauncherError(f"--nproc {value!r}: expected the number of processes per node, at least 1")
        return int(value)
    return None


def launch(script: str, argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """``defect-train`` / ``defect-test``: parse ``TOOLKIT CONFIG [CHECKPOINT] [GPUS|--nproc N] [args...]``, run it."""
    if script not in SCRIPTS:
        raise LauncherError(f"unknown script {script!r}: expected one of {SCRIPTS}")
    parser = _launch_parser(script, prog or f"defect-{script}")
    argv = sys.argv[1:] if argv is None else list(argv)
    args, rest = _parse_head(parser, argv, 3 if script == "test" else 2)
    gpus = 1
    if rest and _GPUS.fullmatch(rest[0]):
        gpus = int(rest.pop(0))
    try:
        nproc = _pop_nproc(rest)
        if nproc is not None:
            if gpus != 1:
                raise LauncherError(f"GPUS={gpus} and --nproc {nproc}: give the number of processes once")
            gpus = nproc
        config = find_config(args.config)
        upstream_script(args.toolkit, script)  # fail here, not in every worker
        if script == "test":
            if "://" not in args.checkpoint and not Path(args.checkpoint).is_file():
                raise LauncherError(f"checkpoint {args.checkpoint} not found")
            rest.insert(0, args.checkpoint)
        command = distributed_command(script, args.toolkit, config, gpus, rest)
    except LauncherError as error:
        _fail(parser, str(error))
    if command is not None:
        return _exec(command)
    run_script(script, args.toolkit, config, rest)
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    """Console command ``defect-train {mmpretrain|mmseg} CONFIG [GPUS | --nproc N] [train.py args...]``."""
    return launch("train", argv)


def test_main(argv: Sequence[str] | None = None) -> int:
    """Console command ``defect-test {mmpretrain|mmseg} CONFIG CHECKPOINT [GPUS] [test.py args...]``."""
    return launch("test", argv)


test_main.__test__ = False  # a console entry point, not a pytest test


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m defect_plugins.runners.launcher``: ``launch {train,test} ...`` or ``{train,test} ...``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["launch"]:
        parser = argparse.ArgumentParser(prog="python -m defect_plugins.runners.launcher launch", allow_abbrev=False)
        parser.add_argument("script", choices=SCRIPTS)
        if len(argv) < 2 or argv[1] not in SCRIPTS:
            parser.parse_args(argv[1:2])  # usage and exit
        return launch(argv[1], argv[2:], prog=f"defect-{argv[1]}")
    parser = argparse.ArgumentParser(
        prog="python -m defect_plugins.runners.launcher", allow_abbrev=False, description=__doc__.split("\n")[0],
        usage="python -m defect_plugins.runners.launcher {train,test} TOOLKIT CONFIG [script args...]\n"
              "       python -m defect_plugins.runners.launcher launch {train,test} TOOLKIT CONFIG [CHECKPOINT] [GPUS] "
              "[args...]")
    parser.add_argument("script", choices=SCRIPTS)
    parser.add_argument("toolkit", choices=sorted(TOOLKITS))
    parser.add_argument("config", help="config file path or packaged config name")
    args, rest = _parse_head(parser, argv, 3)
    try:
        upstream_script(args.toolkit, args.script)
        find_config(args.config)
    except LauncherError as error:
        _fail(parser, str(error))
    run_script(args.script, args.toolkit, args.config, rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
