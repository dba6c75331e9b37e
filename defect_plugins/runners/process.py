"""Child processes that do not outlive the command that started them.

The demo, ``defect-teacher`` and the experiment tools run each training as a child process. When such a
command is killed (SIGKILL, SIGTERM's default action, the OOM killer, a CI timeout), Python runs no cleanup
and the training would go on as an orphan, holding the CPU for the rest of its schedule (seen once:
a test that kills the demo left a 50-epoch training running under the rest of the suite). On Linux the
child asks the kernel to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG)``, see prctl(2)); the
signal is kept across ``exec``. Elsewhere nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :mod:`subprocess`: the child gets SIGKILL when the process that started it dies.

    Strictly, the kernel sends the signal when the *thread* that started the child ends; every caller here waits
    for its child in that thread (the demo's lanes too), so the two end together.
    ``None`` where that cannot be had (not Linux, no ``prctl`` in the C library). The function only calls
    ``prctl`` and ``getppid`` in the child, between ``fork`` and ``exec`` (nothing that takes a lock another
    thread could hold), so it is safe from the demo's lane threads.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: no one is left to wait for us
            os._exit(1)

    return set_death_signal


def die_with_parent_now() -> bool:
    """The calling process gets SIGKILL when its parent dies: for a ``torch.distributed.run`` worker.

    ``defect-fit --nproc`` starts ``torch.distributed.run`` with :func:`die_with_parent`, but the workers are the
    elastic agent's children, started without it: if the fit is killed, the agent dies with it (SIGKILL, no
    cleanup) and its workers would go on training as orphans. A worker calls this first thing, so it ends with
    its agent. False where ``prctl`` cannot be had (not Linux); exits at once when the parent is already gone.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    parent = os.getppid()
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent == 1 or os.getppid() != parent:  # the agent died before prctl took effect
        os._exit(1)
    return True
