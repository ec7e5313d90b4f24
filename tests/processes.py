"""The four services as separate processes (python -m services.<name>) on ports of their own,
with a real SMTP server (aiosmtpd) that keeps what it accepts. Used by the e2e tests and the
latency benchmark."""

import asyncio
import email
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller

from shared.admin import SERVICES, wait_ready
from shared.settings import Settings
from tests.guard import PROCESS_LOGS

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".stack" / "log"
# Start-up includes migrations and joining consumer groups; on a loaded 2-core machine that can take a minute
# (TEST_READY_SECONDS stretches it on a machine shared with other work).
READY_SECONDS = float(os.environ.get("TEST_READY_SECONDS", "120"))


class SmtpInbox:
    """aiosmtpd handler keeping every accepted message. A test can make it slow (`pause_s`) and
    wait on `receiving` to kill a sender in the middle of an SMTP send. Messages are parsed when
    `messages` is read, not in the SMTP server's thread: there, parsing each message (a PDF
    attached) held the GIL against the benchmark's probes in the same process."""

    def __init__(self) -> None:
        self._accepted: list[tuple[bytes, str, float]] = []
        self._parsed: list[Message] = []
        self.pause_s = 0.0
        self.receiving = threading.Event()  # set from the SMTP server's own thread

    async def handle_DATA(self, server, session, envelope) -> str:
        self.receiving.set()
        if self.pause_s:
            await asyncio.sleep(self.pause_s)
        self._accepted.append((envelope.content, ",".join(envelope.rcpt_tos), time.time()))
        return "250 OK"

    @property
    def accepted(self) -> int:
        """How many messages were accepted so far (nothing parsed)."""
        return len(self._accepted)

    @property
    def messages(self) -> list[Message]:
        for content, recipients, at in self._accepted[len(self._parsed) :]:
            msg = email.message_from_bytes(content)
            msg["X-Envelope-To"] = recipients
            msg["X-Accepted-At"] = repr(at)
            self._parsed.append(msg)
        return self._parsed

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]


# Ports for the services tests start: below the kernel's ephemeral range (32768+), where a port
# can be taken by any outgoing connection (to Kafka, Postgres) before the service binds it.
PRIVATE_PORTS = range(20000, 32000)


def free_port() -> int:
    """A free port of PRIVATE_PORTS (a port found free in the ephemeral range could be taken
    before the service binds it, and another run's service then answers our readiness check)."""
    for _ in range(200):
        port = random.choice(PRIVATE_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PRIVATE_PORTS}")


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    inbox: SmtpInbox
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Ports of the replicas after the first ("billing-1", ...); the first uses the settings' port.
    replica_ports: dict[str, int] = field(default_factory=dict)

    def url(self, service: str, replica: int = 0) -> str:
        return f"http://127.0.0.1:{self._settings_of(service, replica).http_port(service)}"

    def replicas(self, service: str) -> int:
        return 1 + sum(name.startswith(f"{service}-") for name in self.replica_ports)

    def _settings_of(self, service: str, replica: int) -> Settings:
        if not replica:
            return self.settings
        return self.settings.model_copy(update={f"{service}_port": self.replica_ports[f"{service}-{replica}"]})

    def log_path(self, service: str) -> Path:
        """One file per run and service: concurrent runs on one machine do not mix their logs,
        and the session guard (tests/guard.py) reads this run's ERROR lines from it."""
        return LOGS / f"e2e-{self.settings.topic_prefix.replace('.', '-')}{service}.log"

    def start(self, service: str, replica: int = 0) -> None:
        """Replica 0 is named after the service, replica r > 0 `<service>-r` (its own HTTP port)."""
        name = f"{service}-{replica}" if replica else service
        env = {**self.env, f"{service.upper()}_PORT": str(self.replica_ports[name])} if replica else self.env
        path = self.log_path(name)
        if path not in PROCESS_LOGS:
            PROCESS_LOGS.append(path)
        log = open(path, "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env, stdout=log, stderr=log
        )

    def kill(self, service: str) -> None:
        """SIGKILL: no graceful shutdown, as a crash would."""
        proc = self.processes.pop(service)
        proc.kill()
        proc.wait(10)

    def stop(self, service: str) -> None:
        proc = self.processes.pop(service)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    async def ready(self, service: str, replica: int = 0) -> None:
        """Ready, and by this process: one that died (e.g. its port was taken) is not ready though
        something else may answer on its port."""
        name = f"{service}-{replica}" if replica else service
        ready = await wait_ready(service, READY_SECONDS, self._settings_of(service, replica))
        if not ready or self.processes[name].poll() is not None:
            log = self.log_path(name).read_text()[-3000:]
            raise AssertionError(f"{name} not ready:\n{log}")


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpInbox, int]]:
    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@asynccontextmanager
async def running_services(
    base: Settings,
    inbox: SmtpInbox,
    smtp_port: int,
    *,
    services: Sequence[str] = SERVICES,
    extra_env: dict[str, str] | None = None,
    replicas: int = 1,
) -> AsyncIterator[Stack]:
    """Start the services (`replicas` processes of each) against `base`'s database and topics;
    stop them afterwards."""
    ports = {s: free_port() for s in SERVICES}
    settings = base.model_copy(
        update={
            **{f"{s}_port": p for s, p in ports.items()},
            "smtp_port": smtp_port,
            "documents_url": f"http://127.0.0.1:{ports['documents']}",
            "public_base_url": f"http://localhost:{ports['payments']}",
        }
    )
    env = {
        **os.environ,
        "PG_DATABASE": settings.pg_database,
        "TOPIC_PREFIX": settings.topic_prefix,
        "SMTP_PORT": str(smtp_port),
        "DOCUMENTS_URL": settings.documents_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "CONSUMER_RETRY_BACKOFF_MS": "20",
        # An email left `sending` by a killed sender goes out again after this (default 300 s).
        "EMAIL_SEND_LEASE_SECONDS": "10",
        "LOG_LEVEL": "INFO",
        **{f"{s.upper()}_PORT": str(p) for s, p in ports.items()},
        **(extra_env or {}),
    }
    LOGS.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        settings, env, inbox, replica_ports={f"{s}-{r}": free_port() for s in services for r in range(1, replicas)}
    )
    for service in services:
        for r in range(replicas):
            stack.start(service, r)
    try:
        await asyncio.gather(*(stack.ready(s, r) for s in services for r in range(replicas)))
        yield stack
    finally:
        for service in list(stack.processes):
            stack.stop(service)
