"""The consumer's routing in memory (FastStream's TestKafkaBroker, no broker, no database):
what cannot be an event goes to the DLQ with the reason; events no handler wants are skipped."""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from shared import topics
from shared.consumer import EventConsumer, consumer_group
from shared.outbox import OutboundMessage
from shared.settings import Settings
from tests.conftest import example_event


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        self.sent.extend(messages)


class MemoryInbox:
    """The database a dead letter needs: its claim in the inbox (`claim_ids`), kept in a set."""

    def __init__(self) -> None:
        self.claimed: set[str] = set()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield None

    async def claim_ids(self, session: Any, inbox: Any, entries: Sequence[tuple[str, str]]) -> set[str]:
        fresh = {i for i, _ in entries} - self.claimed
        self.claimed |= fresh
        return fresh


@pytest.fixture(autouse=True)
def memory_inbox(monkeypatch: pytest.MonkeyPatch) -> MemoryInbox:
    inbox = MemoryInbox()
    monkeypatch.setattr("shared.consumer.claim_ids", inbox.claim_ids)
    return inbox


def consumer(dlq: RecordingPublisher, handled: list[str], db: MemoryInbox) -> tuple[KafkaBroker, EventConsumer]:
    broker = KafkaBroker()

    async def never(session, event) -> None:  # pragma: no cover - a database would be needed
        handled.append(event.event_id)

    c = EventConsumer(
        service="billing",
        topic=topics.SCHEDULING,
        db=db,  # type: ignore[arg-type]  # only dead letters reach it; no event here does
        inbox=None,  # type: ignore[arg-type]
        handlers={"SessionVoided": never},
        dlq_publisher=dlq,
        settings=Settings(),
    )
    c.subscribe(broker)
    return broker, c


async def test_bad_messages_are_dead_lettered_with_the_reason(memory_inbox: MemoryInbox) -> None:
    dlq = RecordingPublisher()
    handled: list[str] = []
    broker, _ = consumer(dlq, handled, memory_inbox)
    async with TestKafkaBroker(broker) as br:
        # the in-memory broker gives every record offset 0: two partitions keep their dead letters apart
        await br.publish(b"not json at all", topic=topics.SCHEDULING, key=b"client-1", partition=0)
        bad = example_event("SessionCompleted-self-pay")
        bad["data"]["session"]["services"][0]["fee_cents"] = "lots"
        await br.publish(json.dumps(bad).encode(), topic=topics.SCHEDULING, key=b"client-1", partition=1)
    assert [m.topic for m in dlq.sent] == [topics.dlq(topics.SCHEDULING)] * 2
    assert "not JSON" in dlq.sent[0].headers["error"]
    assert "fee_cents" in dlq.sent[1].headers["error"]
    assert dlq.sent[1].headers["error-type"] == "BadEvent"
    assert dlq.sent[0].value == b"not json at all" and dlq.sent[0].key == "client-1"
    assert handled == [] and len(memory_inbox.claimed) == 2, "each dead letter claimed once"


async def test_events_without_a_handler_are_skipped_not_dead_lettered(memory_inbox: MemoryInbox) -> None:
    dlq = RecordingPublisher()
    handled: list[str] = []
    broker, _ = consumer(dlq, handled, memory_inbox)
    async with TestKafkaBroker(broker) as br:
        await br.publish(json.dumps(example_event("ClinicianUpserted")).encode(), topic=topics.SCHEDULING)
    assert dlq.sent == [] and handled == []


async def test_a_type_the_service_does_not_take_is_skipped_by_its_header_unparsed(memory_inbox: MemoryInbox) -> None:
    """The `event-type` header decides before the body is parsed: a malformed record of a type
    this service does not take is left to the services that take it (their dead letter), one of
    a type it takes, or of a type no service knows, is dead-lettered here."""
    dlq = RecordingPublisher()
    handled: list[str] = []
    broker, _ = consumer(dlq, handled, memory_inbox)
    async with TestKafkaBroker(broker) as br:
        for partition, event_type in enumerate(("ClinicianUpserted", "SessionVoided", "SessionRescheduled")):
            await br.publish(b"{broken", topic=topics.SCHEDULING, partition=partition,
                             headers={"event-type": event_type})  # fmt: skip
    assert [m.headers["event-type"] for m in dlq.sent] == ["SessionVoided", "SessionRescheduled"]
    assert handled == []


def test_each_service_and_topic_has_its_own_consumer_group() -> None:
    s = Settings()
    assert consumer_group(s, "billing", topics.SCHEDULING) != consumer_group(s, "billing", topics.PAYMENTS)
    assert consumer_group(s, "billing", topics.SCHEDULING) != consumer_group(s, "payments", topics.SCHEDULING)


def test_runs_with_their_own_topic_prefix_have_their_own_consumer_groups() -> None:
    """In-process and e2e services of one run, or two runs on one broker, must not share a group
    (they would split each other's partitions and miss events)."""
    a, b = Settings(topic_prefix="ta."), Settings(topic_prefix="tb.")
    assert consumer_group(a, "billing", topics.SCHEDULING) != consumer_group(b, "billing", topics.SCHEDULING)
    assert consumer_group(a, "billing", topics.SCHEDULING).startswith("ta.")


class IdleThenBusyConsumer:
    """aiokafka's `getmany` as an idle consumer sees it: nothing within the wait, then a batch."""

    def __init__(self, batches: list[dict[str, list[str]]]) -> None:
        self.batches = batches
        self.waits: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int | None = None) -> dict[str, list[str]]:
        self.waits.append(timeout_ms)
        return self.batches.pop(0)


async def test_an_idle_consumer_waits_in_its_fetch_and_never_sleeps_after_an_empty_poll(
    memory_inbox: MemoryInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastStream's batch subscriber sleeps after an empty poll: an event arriving meanwhile
    waited out the sleep. Ours goes straight back to waiting on the fetch."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("faststream.kafka.subscriber.usecase.anyio.sleep", sleep)
    broker, _ = consumer(RecordingPublisher(), [], memory_inbox)
    (subscriber,) = broker.subscribers
    fetch = IdleThenBusyConsumer([{}, {"p0": ["a", "b"], "p1": ["c"]}])
    assert await subscriber.get_msg(fetch) == ()
    assert await subscriber.get_msg(fetch) == ("a", "b", "c")
    assert slept == [] and fetch.waits == [Settings().consumer_poll_ms] * 2
