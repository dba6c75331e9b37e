"""defect_plugins.runners.process.die_with_parent: a child started with it does not outlive a killed parent (Linux)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from defect_plugins.runners.process import die_with_parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux only")

PARENT = """
import subprocess, sys, time
from defect_plugins.runners.process import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=die_with_parent())
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has died already
    except FileNotFoundError:
        return False


def test_child_is_killed_with_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)  # no cleanup can run in the parent
    parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_a_normal_child_runs_and_exits() -> None:
    done = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True,
                          preexec_fn=die_with_parent())
    assert done.returncode == 0 and done.stdout.strip() == "ok"


AGENT = """
import subprocess, sys, time
worker = "from defect_plugins.runners.process import die_with_parent_now; die_with_parent_now(); import time; " \\
         "print('armed', flush=True); time.sleep(120)"
child = subprocess.Popen([sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True)  # no preexec_fn
assert child.stdout.readline().strip() == "armed"
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_worker_arms_itself_against_an_agent_killed_without_cleanup() -> None:
    """die_with_parent_now: torchrun's workers are started without a preexec_fn; each arms itself instead."""
    agent = subprocess.Popen([sys.executable, "-c", AGENT], stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None
    worker = int(agent.stdout.readline())
    assert _alive(worker)
    agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed agent")
