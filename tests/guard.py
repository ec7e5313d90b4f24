"""Session-wide guard (loaded by tests/conftest.py): an integration, e2e or browser test fails
when, while it ran, an event landed in a DLQ of this run's topics; an ERROR logged by our code
(`services.*`, `shared.*`, in this process or by the services the e2e tier runs as processes)
fails it too (TEST_GUARD_ERROR_LOGS=warn makes that a warning, to see them all in one run).
A test that does either on purpose says so: `@pytest.mark.expect_dlq`, `@pytest.mark.expect_error_log`."""

import logging
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.settings import Settings

GUARDED = ("integration", "e2e", "browser")
OURS = ("services.", "shared.")  # library loggers (aiokafka's reconnect chatter) are not ours
ERROR_LOGS_FAIL = os.environ.get("TEST_GUARD_ERROR_LOGS", "fail") != "warn"
# Log files of service processes started by this run (tests/processes.py registers them).
PROCESS_LOGS: list[Path] = []


class UnexpectedErrorLog(UserWarning):
    """Our code logged an ERROR during a test that does not expect one."""


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(OURS):
            self.records.append(record)


@pytest.fixture(scope="session")
def error_records() -> ErrorRecords:
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    return handler


@pytest.fixture(scope="session")
async def dlq_reader(test_settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=test_settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    yield consumer
    await consumer.stop()


async def dlq_ends(consumer: AIOKafkaConsumer, prefix: str) -> dict[TopicPartition, int]:
    """End offsets of every DLQ partition of this run's topics (isolated prefixes included)."""
    await consumer._client.force_metadata_update()
    names = [t for t in consumer._client.cluster.topics() if t.startswith(prefix) and t.endswith(".dlq")]
    parts = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
    return await consumer.end_offsets(parts) if parts else {}


def _log_sizes() -> dict[Path, int]:
    return {p: p.stat().st_size for p in PROCESS_LOGS if p.exists()}


def _process_errors(before: dict[Path, int]) -> list[str]:
    errors = []
    for path in PROCESS_LOGS:
        if not path.exists():
            continue
        with path.open("rb") as f:
            f.seek(before.get(path, 0))
            for line in f.read().decode(errors="replace").splitlines():
                ours = '"level": "ERROR"' in line and any(f'"logger": "{p}' in line for p in OURS)
                if ours or line.startswith(("ERROR:", "Traceback")):
                    errors.append(f"{path.name}: {line[:300]}")
    return errors


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Guard the tiers that run real Kafka (unit tests stay free of any infrastructure)."""
    for item in items:
        if any(item.get_closest_marker(m) for m in GUARDED) and hasattr(item, "fixturenames"):
            item.fixturenames.append("no_unexpected_dlq_or_error")


@pytest.fixture
async def no_unexpected_dlq_or_error(
    request: pytest.FixtureRequest, test_settings: Settings, dlq_reader: AIOKafkaConsumer, error_records: ErrorRecords
) -> AsyncIterator[None]:
    settings, consumer, records = test_settings, dlq_reader, error_records
    ends = await dlq_ends(consumer, settings.topic_prefix)
    sizes = _log_sizes()
    seen = len(records.records)
    yield
    hint = "\n(mark the test expect_dlq / expect_error_log if this is what it tests)"
    if not request.node.get_closest_marker("expect_error_log"):
        logged = [f"{r.name}: {r.getMessage()[:300]}" for r in records.records[seen:]]
        logged += _process_errors(sizes)
        if logged:
            message = "unexpected ERROR logs:\n  " + "\n  ".join(logged[:20]) + hint
            if ERROR_LOGS_FAIL:
                pytest.fail(message)
            warnings.warn(message, UnexpectedErrorLog, stacklevel=1)
    if not request.node.get_closest_marker("expect_dlq"):
        after = await dlq_ends(consumer, settings.topic_prefix)
        grew = {f"{tp.topic}[{tp.partition}]": n - ends.get(tp, 0) for tp, n in after.items() if n > ends.get(tp, 0)}
        if grew:
            pytest.fail(f"unexpected DLQ entries: {grew}{hint}")
