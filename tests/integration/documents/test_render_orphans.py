"""A documents process killed with SIGKILL takes its render processes with it: nobody is left
to stop the pool, so they must not linger (rendering, holding ~140 MB each) as orphans."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.integration

PARENT = """
import os, time
from services.documents.rendering import Renderer
renderer = Renderer(2)
renderer.start()
# both warmed up (their start-up, which arms the parent-death signal, has run)
[f.result() for f in [renderer._pool.submit(os.getpid) for _ in range(4)]]
print(" ".join(str(pid) for pid in renderer.pids()), flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for a reaper that may never come)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_render_processes_die_with_a_killed_service_process() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(children) == 2 and all(running(pid) for pid in children)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while any(running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in children if running(pid)]
    finally:
        for pid in children if "children" in locals() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not left, f"render processes {left} outlived their killed parent"
