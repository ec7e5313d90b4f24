"""`./dev` keeps services up: it sees a dead service (a zombie too, which `kill -0` counts as
alive), `./dev services` (and `up`) restarts exactly what is down, and `--supervise` restarts a
service that exits, with a backoff that doubles while it keeps dying. Runs stack/stack.sh with a
state directory, database and topics of its own, on two services to keep it cheap."""

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared import admin
from shared.settings import Settings
from tests.conftest import eventually, isolated_topics
from tests.processes import ROOT, free_port

pytestmark = pytest.mark.e2e
SERVICES = ("billing", "payments")


class Dev:
    def __init__(self, state: Path, env: dict[str, str]) -> None:
        self.state, self.env = state, env

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "stack/stack.sh", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )

    def pid(self, service: str) -> int:
        return int((self.state / "run" / f"svc-{service}.pid").read_text())

    def status(self) -> dict[str, str]:
        lines = self.run("status").stdout.splitlines()
        return {line.split(":")[0].removeprefix("svc-"): line for line in lines if line.startswith("svc-")}

    def ready(self, service: str) -> bool:
        port = self.env[f"{service.upper()}_PORT"]
        return subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/readyz"], capture_output=True).returncode == 0


@pytest.fixture
async def dev(test_settings: Settings, tmp_path: Path) -> AsyncIterator[Dev]:
    own = await isolated_topics(test_settings.model_copy(update={"pg_database": f"{test_settings.pg_database}_dev"}))
    await admin.ensure_database(own)
    env = {
        **os.environ,
        "DEV_STATE": str(tmp_path),
        "DEV_SERVICES": " ".join(SERVICES),
        "PG_DATABASE": own.pg_database,
        "TOPIC_PREFIX": own.topic_prefix,
        "SUPERVISE_BACKOFF_S": "1",
        **{f"{s.upper()}_PORT": str(free_port()) for s in SERVICES},
    }
    d = Dev(tmp_path, env)
    try:
        yield d
    finally:
        d.run("stop")  # only what this state directory started: no infrastructure pid files in it
        await admin.drop_database(own, own.pg_database)


@pytest.fixture
def zombie() -> Iterator[int]:
    """A killed child this process has not reaped: state Z, and `kill -0` succeeds on it."""
    child = subprocess.Popen(["sleep", "600"])
    child.send_signal(signal.SIGKILL)
    for _ in range(100):
        if Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
    yield child.pid
    child.wait()


async def test_dev_restarts_exactly_what_is_down_and_sees_zombies(dev: Dev, zombie: int) -> None:
    assert dev.run("services").returncode == 0
    first = {s: dev.pid(s) for s in SERVICES}

    os.kill(first["billing"], signal.SIGKILL)
    await eventually(lambda: "DOWN" in dev.status()["billing"])
    assert "running" in dev.status()["payments"]

    # A zombie's pid in the pid file: alive to `kill -0`, down to ./dev.
    os.kill(first["payments"], signal.SIGKILL)
    await eventually(lambda: not Path(f"/proc/{first['payments']}").exists())
    (dev.state / "run" / "svc-payments.pid").write_text(str(zombie))
    os.kill(zombie, 0)
    assert "zombie" in dev.status()["payments"]

    result = dev.run("services")
    assert result.returncode == 0, result.stderr
    assert "billing is down" in result.stdout and "payments is down" in result.stdout
    second = {s: dev.pid(s) for s in SERVICES}
    assert second["billing"] != first["billing"] and second["payments"] != zombie
    assert all(dev.ready(s) for s in SERVICES)

    # Nothing down: nothing restarted.
    assert dev.run("services").returncode == 0
    assert {s: dev.pid(s) for s in SERVICES} == second


async def test_supervised_mode_restarts_a_service_that_exits_with_backoff(dev: Dev) -> None:
    assert dev.run("services").returncode == 0
    out_path = dev.state / "supervisor.out"
    supervisor = subprocess.Popen(  # noqa: ASYNC220 (it runs in the background, never awaited)
        ["bash", "stack/stack.sh", "services", "--supervise"],
        cwd=ROOT,
        env=dev.env,
        stdout=out_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        await eventually(lambda: "supervising" in out_path.read_text(), timeout=60)
        pids = []
        for _ in range(2):
            old = dev.pid("billing")
            os.kill(old, signal.SIGKILL)
            await eventually(lambda old=old: dev.pid("billing") != old, timeout=30)
            await eventually(lambda: dev.ready("billing"), timeout=60)
            pids.append(dev.pid("billing"))
        assert "running" in dev.status()["payments"]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(30)
    out = out_path.read_text()
    assert "billing exited" in out and "restarting in 1 s" in out and "restarting in 2 s" in out, out
    assert supervisor.returncode == 0
    assert "running" in dev.status()["billing"], "services keep running after the supervisor stops"
