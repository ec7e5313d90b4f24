"""What a render process does when it starts: it imports the service's entry module again (as
multiprocessing's `spawn` does) without loading the web, database and Kafka stack, warms up and
freezes that warm heap before it steps back in the CPU scheduler."""

import subprocess
import sys

import pytest

from services.documents import rendering

SPAWNED_CHILD = """
import runpy, sys
runpy.run_module("services.documents.__main__", run_name="__mp_main__", alter_sys=True)
print(",".join(m for m in ("services.documents.app", "fastapi", "sqlalchemy", "faststream") if m in sys.modules))
"""


def test_a_render_process_does_not_import_the_service_stack() -> None:
    """`spawn` runs the parent's main module under the name `__mp_main__` in each child."""
    done = subprocess.run([sys.executable, "-c", SPAWNED_CHILD], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_render_process_warms_up_before_it_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    monkeypatch.setattr(rendering, "die_with_parent", lambda pid: steps.append("die_with_parent"))
    monkeypatch.setattr(rendering, "warm_up", lambda: steps.append("warm_up"))
    monkeypatch.setattr(rendering.gc, "freeze", lambda: steps.append("freeze"))
    monkeypatch.setattr(rendering.os, "nice", lambda n: steps.append(f"nice {n}"))
    rendering.start_worker(123, 10)
    assert steps == ["die_with_parent", "warm_up", "freeze", "nice 10"]
