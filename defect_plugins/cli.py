"""``defect <verb>``: every command of the package behind one name (as ``git``, ``mim`` or ``anomalib`` do).

    defect infer model.xml images/ --out results     # = defect-infer model.xml images/ --out results
    defect station --model model.xml                 # = defect-station --model model.xml
    defect --help                                    # the verbs

Each verb runs the command of the same name with the rest of the line, unchanged; its ``--help``
is that command's. The ``defect-<verb>`` names stay as aliases for one release: scripts and the
README's commands keep working. Commands are imported only when chosen, so ``defect infer`` and
``defect station`` import no torch (they run in the runtime-only install).

A reader that stops early (``defect configs list | head``) ends the command quietly, as a shell
tool does, instead of with a ``BrokenPipeError`` traceback (:func:`quiet_on_closed_pipe`).
"""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

# verb -> (module:function, one line for the verb list); ``defect-<verb>`` is the same command
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("defect_plugins.demo.full:main", "train, export and score one model of each toolkit on synthetic steel"),
    "demo-anomaly": ("defect_plugins.demo.anomaly_only:main", "AKF-RD alone, with anomalib's exporter and inferencer"),
    "train": ("defect_plugins.runners.launcher:train_main",
              "train an OpenMMLab config (mmpretrain / mmseg tools/train.py)"),
    "test": ("defect_plugins.runners.launcher:test_main", "test an OpenMMLab checkpoint (tools/test.py)"),
    "export": ("defect_plugins.deploy.export:main", "export a checkpoint to OpenVINO (FP32, FP16, INT8 with a guard)"),
    "infer": ("defect_plugins.deploy.infer:main", "run an exported model over folders, lists, videos or a camera"),
    "bench": ("defect_plugins.deploy.bench.cli:main", "latency and throughput beside OpenVINO's benchmark_app"),
    "station": ("defect_plugins.station.cli:main", "the operator station's page for exported models"),
    "configs": ("defect_plugins.packaged_configs:main", "list, show or copy the packaged configs"),
    "synth": ("defect_plugins.data.cli:main", "write a synthetic steel data set"),
    "cls-split": ("defect_plugins.cls.datasets.split:main", "write NEU-CLS style split files for a class folder"),
    "seg-normal-patches": ("defect_plugins.seg.datasets.normal_patches:main",
                           "cut defect-free patches for ARCD stage 1"),
    "teacher": ("defect_plugins.fit.domain_teacher:main", "train a steel-domain teacher for reverse distillation"),
    "fit": ("defect_plugins.fit.cli:main", "fit a model on your own folder of images into a calibrated bundle"),
    "migrate": ("defect_plugins.gan.cli:main", "CycleGAN defect-sample migration between production lines"),
}


def usage() -> str:
    width = max(len(verb) for verb in COMMANDS)
    lines = ["usage: defect <verb> [arguments]", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {text}" for verb, (_, text) in COMMANDS.items()]
    lines += ["", "'defect <verb> --help' shows a verb's options. The names defect-<verb> are aliases of",
              "'defect <verb>', kept for one release."]
    return "\n".join(lines)


# the exit status of a command a closed pipe stopped: 128 + SIGPIPE, what a shell reports for such a command
CLOSED_PIPE_STATUS = 141


def quiet_on_closed_pipe(command: Callable[[], int]) -> int:
    """Run ``command``; when its reader has gone (``| head``), stop quietly with :data:`CLOSED_PIPE_STATUS`.

    The recipe of the Python documentation (``signal`` module, "Note on SIGPIPE"): Python ignores
    SIGPIPE, so a write to a closed pipe raises ``BrokenPipeError``; catch it, point stdout at
    ``os.devnull`` so that the interpreter's final flush cannot raise it again, and exit non-zero.
    stdout is flushed inside, also when the command exits (``--help``), so that output still
    buffered meets the closed pipe here rather than in the interpreter's shutdown.
    """
    try:
        try:
            return command()
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return CLOSED_PIPE_STATUS


def run(verb: str, argv: Sequence[str]) -> int:
    """Run ``verb``'s command with ``argv``; its exit status (quiet when stdout's reader goes away)."""
    target, _ = COMMANDS[verb]
    module, function = target.split(":")

    def command() -> int:
        return int(getattr(importlib.import_module(module), function)(list(argv)) or 0)

    return quiet_on_closed_pipe(command)


def alias() -> int:
    """Entry point of the ``defect-<verb>`` names: ``defect <verb>`` with this process's arguments.

    With ``--help`` it first says that the name is an alias kept for one release.
    """
    name = Path(sys.argv[0]).stem
    verb = name.removeprefix("defect-")
    if verb not in COMMANDS:
        print(f"defect: error: {name!r} is not a defect-<verb> command; 'defect --help' lists the verbs",
              file=sys.stderr)
        return 2
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        note = f"({name} is an alias of 'defect {verb}', kept for one release)"
        status = quiet_on_closed_pipe(lambda: print(note) or 0)
        if status:
            return status
    return run(verb, sys.argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        return quiet_on_closed_pipe(lambda: print(usage()) or (0 if args else 2))
    verb = args[0]
    if verb not in COMMANDS:
        near = [name for name in COMMANDS if name.startswith(verb[:2])]
        print(f"defect: error: unknown verb {verb!r}{' (did you mean ' + ', '.join(near) + '?)' if near else ''}; "
              f"'defect --help' lists them", file=sys.stderr)
        return 2
    return run(verb, args[1:])


if __name__ == "__main__":
    sys.exit(main())
