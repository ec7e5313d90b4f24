"""Fixtures shared by every tier. Integration and e2e tests get their own database and topic
prefix per pytest run, so parallel runs on one machine never see each other's data."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata

from shared import admin, topics
from shared.consumer import consumer_group
from shared.kafka import client_options
from shared.settings import Settings
from tests.guard import (  # noqa: F401  (the session-wide guard: fixtures and its collection hook)
    dlq_reader,
    error_records,
    no_unexpected_dlq_or_error,
    pytest_collection_modifyitems,
)

FIXTURES = Path(__file__).parent / "fixtures"


def example_event(name: str, **data_overrides: Any) -> dict[str, Any]:
    """A contract example (tests/fixtures/events) with a fresh event id."""
    event = json.loads((FIXTURES / "events" / f"{name}.json").read_text())
    event["event_id"] = str(uuid.uuid4())
    event["data"].update(data_overrides)
    return event


@pytest.fixture(scope="session")
async def test_settings() -> AsyncIterator[Settings]:
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        pg_database=f"tb_test_{run}",
        topic_prefix=f"t{run}.",
        topic_partitions=3,
        consumer_retry_backoff_ms=20,
        outbox_poll_ms=20,
    )
    await admin.ensure_database(settings)
    await admin.ensure_topics(settings)
    yield settings
    await admin.drop_database(settings, settings.pg_database)
    client = AIOKafkaAdminClient(**client_options(settings))
    await client.start()
    try:
        mine = [t for t in await client.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await client.delete_topics(mine)
    finally:
        await client.close()


async def isolated_topics(settings: Settings) -> Settings:
    """The same database with a topic prefix of its own, for a test that needs empty topics."""
    isolated = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}{uuid.uuid4().hex[:6]}."})
    await admin.ensure_topics(isolated)
    return isolated


@pytest.fixture(scope="session")
async def kafka_producer(test_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**client_options(test_settings), acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def publish(kafka_producer: AIOKafkaProducer, test_settings: Settings) -> Callable[..., Any]:
    """Publish an envelope (dict) or raw bytes the way upstream does: key = client id."""

    async def _publish(
        topic: str, event: dict[str, Any] | bytes, key: str = "k", settings: Settings | None = None
    ) -> RecordMetadata:
        value = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = []
        if isinstance(event, dict):
            headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        topic_name = (settings or test_settings).topic(topic)
        return await kafka_producer.send_and_wait(topic_name, value, key=key.encode(), headers=headers)

    return _publish


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    until: Callable[[list[Any]], bool],
    timeout: float = 20,
    since_ms: int | None = None,
):
    """The records of a topic until `until(records)` holds (or timeout): from the start, or from
    the first record stamped at or after `since_ms` (a long run's topics hold thousands of other
    tests' records, and reading them all can outlast the timeout)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()  # without a group it is assigned every partition here
    records: list[Any] = []
    try:
        if since_ms is not None:
            partitions = list(consumer.assignment())
            found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, found[tp].offset if found[tp] else ends[tp])
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(records) and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for rs in batch.values():
                records.extend(rs)
    finally:
        await consumer.stop()
    return records


async def eventually(check: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    """Poll an async or sync check until it returns a truthy value; fail with the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def committed_offset(settings: Settings, service: str, topic: str, partition: int) -> int:
    """The offset `service` has committed on one partition of `topic` (-1 if none)."""
    client = AIOKafkaAdminClient(**client_options(settings))
    await client.start()
    try:
        offsets = await client.list_consumer_group_offsets(consumer_group(settings, service, topic))
    finally:
        await client.close()
    meta = offsets.get(TopicPartition(settings.topic(topic), partition))
    return meta.offset if meta else -1


async def dead_letter(settings: Settings, topic: str, event_id: str, timeout: float = 20) -> dict[str, str]:
    """The headers of the DLQ record of `topic` for the event `event_id` (fails if none comes)."""

    def headers_of(record: Any) -> dict[str, str]:
        return {k: v.decode() for k, v in record.headers}

    def found(records: list[Any]) -> bool:
        return any(headers_of(r).get("event-id") == event_id for r in records)

    records = await read_topic(settings, topics.dlq(topic), until=found, timeout=timeout)
    matching = [headers_of(r) for r in records if headers_of(r).get("event-id") == event_id]
    assert matching, f"no DLQ record for event {event_id} on {topics.dlq(topic)}"
    return matching[0]
