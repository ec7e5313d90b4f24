"""The fault workload's two-minute version (bench/faults, README "Faults"): a seeded practice
month through the contract on a private stack (own Postgres, Kafka, localstripe, SMTP sink, two
replicas of every service) while services, the broker, the database, Stripe and SMTP are killed
at random moments. Fails on any loss, doubling or drift, or a fault after which events never
flowed again. Costs 4–5 minutes on two busy cores (7 at load ~48, beside a 25-minute run)."""

import asyncio
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bench.faults.checks import caught_up
from bench.faults.infra import Ports, PrivateStack, kafka_class_archive, wait_port
from shared import topics
from shared.consumer import consumer_group
from tests.conftest import isolated_topics
from tests.processes import PRIVATE_PORTS, ROOT

pytestmark = pytest.mark.e2e


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def free_base_port(span: int = 60) -> int:
    """A base port with `span` free ports above it (the private stack's ports), all in
    PRIVATE_PORTS, below the kernel's ephemeral range."""
    for _ in range(50):
        base = random.randrange(PRIVATE_PORTS.start, PRIVATE_PORTS.stop - span)
        if all(_closed(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free port range")


def log_tails(stderr: str, lines: int = 40) -> str:
    """The end of each log the fault run's error names (its directory is removed afterwards)."""
    tails = []
    for name in re.findall(r"see (\S+\.log)", stderr):
        path = Path(name)
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["(missing)"]
        tails.append(f"--- {name}\n" + "\n".join(text))
    return "\n".join(tails)


@pytest.fixture
def faults_dir() -> Iterator[Path]:
    """Under the project (the private Postgres runs as the postgres user, which cannot enter
    pytest's tmp directories)."""
    path = ROOT / ".stack" / f"faults-test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_two_minutes_of_faults_lose_nothing_double_nothing_drift_nothing(faults_dir: Path) -> None:
    argv = [sys.executable, "-m", "bench.faults", "--minutes", "2", "--seed", "7",
            "--base-port", str(free_base_port()), "--dir", str(faults_dir)]  # fmt: skip
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    print(result.stdout)
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}\n{log_tails(result.stderr)}"
    assert "result: 0 lost, 0 doubled, 0 drift" in result.stdout


async def test_the_fault_stacks_broker_restarts_from_its_class_archive_without_the_9s_registration_wait(
    faults_dir: Path,
) -> None:
    """kill -9 of the private broker: the restarted JVM maps the class archive the first start
    dumped (so it does not load and verify its classes again), and the broker runs with the short
    broker session whose expiry a restarted broker waits for before it may register again."""
    stack = PrivateStack(faults_dir, Ports(free_base_port()))
    try:
        await stack.start_kafka()
        archive = kafka_class_archive(ROOT / ".stack" / "kafka" / "libs")
        assert archive.exists()
        stack.kill("kafka")
        started = time.monotonic()
        stack.spawn("kafka")
        await wait_port(stack.ports.kafka, 180, "kafka")
        print(f"broker restarted after kill -9 in {time.monotonic() - started:.1f} s")
        pid = stack.procs["kafka"].popen.pid  # type: ignore[union-attr]
        assert str(archive.resolve()) in await asyncio.to_thread(Path(f"/proc/{pid}/maps").read_text)
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
        finally:
            await admin.close()
        configs = {c[0]: c[1] for c in described.resources[0][4]}
        assert configs["broker.session.timeout.ms"] == "1500"
    finally:
        stack.terminate("kafka")


async def test_caught_up_waits_until_the_group_has_committed_the_topics_end(test_settings, publish) -> None:
    """The last autopay night waits on this: payments must have consumed every bill event."""
    settings = await isolated_topics(test_settings)
    await publish(topics.BILLING, b"a bill", settings=settings)
    assert not await caught_up(settings, "payments", topics.BILLING, seconds=1)
    consumer = AIOKafkaConsumer(
        settings.topic(topics.BILLING),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=consumer_group(settings, "payments", topics.BILLING),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        assert await consumer.getmany(timeout_ms=10_000)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert await caught_up(settings, "payments", topics.BILLING, seconds=10)
