"""Where the machine's CPU went during a stretch of a benchmark: per service process (with the
render processes it started), the broker, Postgres, the benchmark itself and the rest, against
the machine's cores. A latency measured while the cores are saturated is mostly time spent
waiting for one, so the latency benchmark prints this beside its figures."""

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str, float, float]]:
    """pid → (parent pid, command line, CPU seconds so far, CPU seconds of its children that
    ended and were waited for) of every process still readable."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        fields = stat.rpartition(")")[2].split()
        own, reaped = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        found[int(entry.name)] = (int(fields[1]), command, own / TICKS, reaped / TICKS)
    return found


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


@dataclass
class CpuMeter:
    """`start()`, run the load, `stop()`: CPU per group as a share of one core over the stretch."""

    services: dict[str, int]
    """name → pid of each service process; its render processes count apart, as one group."""

    def _by_process(self) -> dict[tuple[int, bool], tuple[str, float]]:
        """(pid, False) → (group, CPU seconds so far); (service pid, True) → its render processes
        that ended (replaced after TASKS_PER_PROCESS PDFs) and their CPU seconds."""
        running, own = processes(), os.getpid()
        found = {
            (pid, False): (self._group(pid, command, running, own), seconds)
            for pid, (_, command, seconds, _) in running.items()
        }
        for name, pid in self.services.items():
            if pid in running:
                found[(pid, True)] = (f"{name} render processes", running[pid][3])
        return found

    def _group(self, pid: int, command: str, processes: dict[int, tuple[int, str, float, float]], own: int) -> str:
        ancestor = pid
        while ancestor in processes and ancestor > 1:
            for name, service_pid in self.services.items():
                if ancestor == service_pid:
                    return f"{name} render processes" if pid != ancestor and "multiprocessing" in command else name
            if ancestor == own:
                return "benchmark"
            ancestor = processes[ancestor][0]
        if "kafka.Kafka" in command:
            return "kafka broker"
        if command.startswith("postgres"):
            return "postgres"
        return "other"

    def start(self) -> None:
        self._before = self._by_process()
        self._machine_before = _machine_busy_seconds()

    def stop(self) -> tuple[dict[str, float], float, float]:
        """(group → share of one core, machine busy share of all cores, cores) over the stretch.
        Counted per process (a render process replaced meanwhile must not subtract its CPU from its
        successor's); render processes that ended count through their parent's children's time, less
        what they had used before the stretch; other processes that ended during the stretch are left
        out (their CPU is not readable any more)."""
        groups: Counter[str] = Counter()
        now = self._by_process()
        for key, (group, seconds) in now.items():
            groups[group] += seconds - self._before.get(key, (group, 0.0))[1]
        for key, (group, seconds) in self._before.items():
            if key not in now and group.endswith("render processes"):
                groups[group] -= seconds  # its children's time holds its whole life, from before the stretch too
        busy, total = (a - b for a, b in zip(_machine_busy_seconds(), self._machine_before, strict=True))
        cores = os.cpu_count() or 1
        wall = total / cores
        return {name: seconds / wall for name, seconds in groups.items()}, busy / total, cores


def report(shares: dict[str, float], busy: float, cores: int, during: str = "during the load") -> str:
    shown = sorted(((name, share) for name, share in shares.items() if share >= 0.005), key=lambda kv: -kv[1])
    rows = ", ".join(f"{name} {share:.0%}" for name, share in shown)
    return f"  CPU {during} (share of one core): {rows}; machine {busy:.0%} busy of {cores} cores"
