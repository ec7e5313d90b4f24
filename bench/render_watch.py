"""Watch the documents render process while a benchmark runs: every 2 s, the share of the time it
ran, waited for a CPU and slept (with where it slept, `/proc/<pid>/wchan`), and the same for its
service process. Made for the render process's unexplained slow mode (README, "Where issue 15
stands"): in some month-end runs it has half a core while the machine is half idle.

Run beside a benchmark: .venv/bin/python -m bench.render_watch [seconds]
"""

import sys
import time
from collections import Counter
from pathlib import Path

from bench.cpu import processes

INTERVAL_S, SAMPLES = 2.0, 40


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()


def _documents_processes() -> tuple[int, int] | None:
    """(service pid, render pid) of the first documents service found with a render process."""
    running = processes()
    services = {pid for pid, (_, command, _, _) in running.items() if command.strip().endswith("services.documents")}
    for pid, (parent, command, _, _) in running.items():
        if parent in services and "multiprocessing" in command and "resource_tracker" not in command:
            return parent, pid
    return None


def _schedstat(pid: int) -> tuple[int, int]:
    """Nanoseconds on a CPU and waiting for one, since the process started."""
    running, waiting, _ = (Path("/proc") / str(pid) / "schedstat").read_text().split()
    return int(running), int(waiting)


def watch_once(service: int, render: int) -> str:
    before = {pid: _schedstat(pid) for pid in (service, render)}
    started = time.monotonic()
    asleep_in: Counter[str] = Counter()
    for _ in range(SAMPLES):
        if _stat(render)[0] == "S":
            asleep_in[(Path("/proc") / str(render) / "wchan").read_text() or "?"] += 1
        time.sleep(INTERVAL_S / SAMPLES)
    elapsed_ns = (time.monotonic() - started) * 1e9
    shares = []
    for name, pid in (("render", render), ("documents", service)):
        (run0, wait0), (run1, wait1) = before[pid], _schedstat(pid)
        shares.append(f"{name} ran {(run1 - run0) / elapsed_ns:4.0%} waited {(wait1 - wait0) / elapsed_ns:4.0%}")
    return f"{time.strftime('%H:%M:%S')} {' | '.join(shares)} | render asleep in {dict(asleep_in)}"


def main(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = _documents_processes()
        if found is None:
            time.sleep(1)
            continue
        try:
            print(watch_once(*found), flush=True)
        except OSError:  # the render process was replaced (TASKS_PER_PROCESS) or the service stopped
            continue


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 600)
