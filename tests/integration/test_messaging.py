"""The shared messaging machinery against the real broker and database: inbox dedup, DLQ
after bounded retries, offsets committed only after the DB commit, outbox relay restarts."""

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Column, String, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import topics
from shared.admin import drop_database, ensure_database
from shared.consumer import consumer_group
from shared.db import service_metadata
from shared.events import ClientNotification, Envelope, Recipient, new_envelope
from shared.kafka import KafkaPublisher, client_options
from shared.outbox import OutboundMessage, OutboxRelay
from shared.polling import drain_then_wait
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually, example_event, isolated_topics, read_topic

pytestmark = pytest.mark.integration

metadata = service_metadata("billing")
probe = Table("probe_applied", metadata, Column("event_id", String, primary_key=True), Column("note", String))


class Probe:
    """A handler whose behaviour each test steers."""

    def __init__(self) -> None:
        self.fail_ids: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.calls: list[str] = []

    async def __call__(self, session: AsyncSession, event: Envelope[Any]) -> None:
        self.calls.append(event.event_id)
        if self.gate is not None:
            await self.gate.wait()
        if event.event_id in self.fail_ids:
            raise RuntimeError(f"cannot apply {event.event_id}")
        await session.execute(probe.insert().values(event_id=event.event_id, note=event.event_type))


@pytest.fixture(scope="module")
async def messaging_settings(test_settings: Settings) -> AsyncIterator[Settings]:
    """A database of its own: these tests create tables outside the billing migrations."""
    settings = test_settings.model_copy(update={"pg_database": f"{test_settings.pg_database}_msg"})
    await ensure_database(settings)
    yield settings
    await drop_database(settings, settings.pg_database)


async def fresh_service(messaging_settings: Settings) -> Service:
    svc = Service("billing", await isolated_topics(messaging_settings), metadata, run_migrations=False)
    async with svc.db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return svc


@pytest.fixture
async def service(messaging_settings: Settings) -> AsyncIterator[tuple[Service, Probe]]:
    svc = await fresh_service(messaging_settings)
    handler = Probe()
    svc.consume(topics.SCHEDULING, {"SessionCompleted": handler, "ClientUpserted": handler})
    await svc.start()
    yield svc, handler
    await svc.stop()


async def applied(svc: Service) -> list[str]:
    async with svc.db.transaction() as s:
        return list((await s.scalars(select(probe.c.event_id))).all())


async def test_same_event_twice_is_applied_once(service, publish) -> None:
    svc, handler = service
    event = example_event("SessionCompleted-self-pay")
    marker = example_event("ClientUpserted-adult")
    for e in (event, event, marker):
        await publish(topics.SCHEDULING, e, settings=svc.settings)
    await eventually(lambda: _contains(svc, marker["event_id"]))
    rows = await applied(svc)
    assert rows.count(event["event_id"]) == 1
    assert handler.calls.count(event["event_id"]) == 1


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_failing_handler_is_retried_then_dead_lettered_and_consumer_goes_on(service, publish) -> None:
    svc, handler = service
    bad = example_event("SessionCompleted-self-pay")
    good = example_event("SessionCompleted-self-pay")
    handler.fail_ids.add(bad["event_id"])
    pub = functools.partial(publish, settings=svc.settings)
    await pub(topics.SCHEDULING, bad, key="client-x")
    await pub(topics.SCHEDULING, good, key="client-x")
    await eventually(lambda: _contains(svc, good["event_id"]))
    dlq = await read_topic(svc.settings, topics.dlq(topics.SCHEDULING), until=lambda rs: len(rs) >= 1)
    assert len(dlq) == 1
    headers = {k: v.decode() for k, v in dlq[0].headers}
    assert headers["event-id"] == bad["event_id"]
    assert "cannot apply" in headers["error"]
    assert headers["attempts"] == str(svc.settings.consumer_max_retries)
    assert headers["original-topic"] == svc.settings.topic(topics.SCHEDULING)
    assert handler.calls.count(bad["event_id"]) >= svc.settings.consumer_max_retries
    assert bad["event_id"] not in await applied(svc)


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_malformed_message_goes_to_dlq_with_reason(service, publish) -> None:
    svc, _ = service
    pub = functools.partial(publish, settings=svc.settings)
    await pub(topics.SCHEDULING, b"{not json")
    missing_field = example_event("SessionCompleted-self-pay")
    del missing_field["data"]["session"]["client_id"]
    await pub(topics.SCHEDULING, missing_field)
    after = example_event("ClientUpserted-minor")
    await pub(topics.SCHEDULING, after)
    await eventually(lambda: _contains(svc, after["event_id"]))
    dlq = await read_topic(svc.settings, topics.dlq(topics.SCHEDULING), until=lambda rs: len(rs) >= 2)
    reasons = sorted(dict((k, v.decode()) for k, v in r.headers)["error"] for r in dlq)
    assert any("invalid envelope" in r for r in reasons)
    assert any("session.client_id" in r for r in reasons)


async def test_offset_is_committed_only_after_the_db_commit(service, publish) -> None:
    svc, handler = service
    handler.gate = asyncio.Event()
    event = example_event("SessionCompleted-self-pay")
    pub = functools.partial(publish, settings=svc.settings)
    await pub(topics.SCHEDULING, event, key="client-commit")
    await eventually(lambda: event["event_id"] in handler.calls)
    assert await _committed_total(svc) == 0, "offset committed before the handler's transaction"
    handler.gate.set()
    await eventually(lambda: _contains(svc, event["event_id"]))
    assert await eventually(lambda: _committed_total(svc)) == 1


async def test_offsets_of_many_small_batches_are_committed_together_and_the_last_soon(
    messaging_settings: Settings, publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit per small batch cost more than the batch: commits are coalesced (at most one per
    CONSUMER_COMMIT_INTERVAL_MS), and the last batch's offsets still follow without more traffic."""
    svc = await fresh_service(messaging_settings.model_copy(update={"consumer_commit_interval_ms": 1000}))
    handler = Probe()
    svc.consume(topics.SCHEDULING, {"SessionCompleted": handler})
    commits: list[dict[TopicPartition, int]] = []
    real_commit = AIOKafkaConsumer.commit

    async def counted_commit(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        commits.append(dict(offsets or {}))
        await real_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", counted_commit)
    batches = 0
    real_process = svc.consumers[0].process

    async def counted_process(records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        nonlocal batches
        batches += 1
        await real_process(records)

    monkeypatch.setattr(svc.consumers[0], "process", counted_process)
    events = [example_event("SessionCompleted-self-pay") for _ in range(30)]
    await svc.start()
    try:
        for event in events:  # one at a time, each applied before the next is sent: many small batches
            await publish(topics.SCHEDULING, event, key="client-coalesce", settings=svc.settings)
            await eventually(lambda e=event: e["event_id"] in handler.calls)

        async def all_committed() -> bool:
            return await _committed_total(svc) == 30

        await eventually(all_committed)
    finally:
        await svc.stop()
    assert batches >= 20, batches
    assert len(commits) <= batches // 3, (len(commits), batches)


async def test_relay_publishes_after_a_crash_between_commit_and_publish(messaging_settings: Settings) -> None:
    svc = await fresh_service(messaging_settings)
    settings = svc.settings
    events = [_notification(i) for i in range(5)]
    async with svc.db.transaction() as session:
        await svc.outbox.stage(session, topics.PORTAL, [("client-r", e) for e in events])

    class CrashingPublisher:
        """Publishes for real, then the process dies before the relay can mark the rows sent."""

        async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
            producer = KafkaPublisher(settings)
            await producer.start()
            try:
                await producer.publish_many(messages)
            finally:
                await producer.stop()
            raise ConnectionError("process killed after the publish, before the mark")

    crashed = OutboxRelay(svc.db, svc.outbox_table, CrashingPublisher())
    with pytest.raises(ConnectionError):
        await crashed.relay_once()
    async with svc.db.transaction() as s:
        unsent = await s.scalar(select(func.count()).where(svc.outbox_table.c.sent_at.is_(None)))
    assert unsent == 5, "the crash rolled back the mark"

    marker = _notification(99)
    await svc.start()  # a fresh process: its relay finds the unsent rows and publishes them again
    try:
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, [("client-r", marker)])
        records = await read_topic(
            settings, topics.PORTAL, until=lambda rs: any(marker.event_id.encode() in r.value for r in rs)
        )

        async def all_marked_sent() -> bool:
            """The relay marks after Kafka's ack, so the marker can be read before its mark commits."""
            async with svc.db.transaction() as s:
                return await s.scalar(select(func.count()).where(svc.outbox_table.c.sent_at.is_(None))) == 0

        await eventually(all_marked_sent)
    finally:
        await svc.stop()
    ids = [dict((k, v.decode()) for k, v in r.headers)["event-id"] for r in records]
    sent = [e.event_id for e in events]
    assert ids == [*sent, *sent, marker.event_id], "at least once, in order: the redo follows the first publish"
    assert all(r.key == b"client-r" for r in records)


def _notification(i: int) -> Envelope[Any]:
    return new_envelope(
        "practice-test",
        ClientNotification(
            notification_id=str(uuid.uuid4()),
            client_id="client-r",
            recipient=Recipient(name="R", email=None),
            kind="bill_shared",
            subject=f"n{i}",
            body_text="b",
        ),
    )


async def _contains(svc: Service, event_id: str) -> bool:
    return event_id in await applied(svc)


async def _committed_total(svc: Service) -> int:
    admin = AIOKafkaAdminClient(**client_options(svc.settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(consumer_group(svc.settings, "billing", topics.SCHEDULING))
    finally:
        await admin.close()
    topic = svc.settings.topic(topics.SCHEDULING)
    return sum(meta.offset for tp, meta in offsets.items() if isinstance(tp, TopicPartition) and tp.topic == topic)


async def test_ops_endpoints_report_database_and_broker(service) -> None:
    svc, _ = service
    svc.publishes(topics.PORTAL, [ClientNotification])
    app = svc.http_app([], title="probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert "events_consumed_total" in (await http.get("/metrics")).text
        channels = (await http.get("/asyncapi.json")).json()["channels"]
        assert any("ClientNotification" in name for name in channels)
        missing = await http.get("/v1/nothing-here")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_readyz_is_503_when_the_database_is_unreachable(messaging_settings: Settings) -> None:
    broken = messaging_settings.model_copy(
        update={"billing_database_url": "postgresql+asyncpg://billing:wrong@127.0.0.1:5432/nowhere"}
    )
    svc = Service("billing", broken, metadata, run_migrations=False)
    app = svc.http_app([], title="probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        ready = await http.get("/readyz")
    await svc.db.dispose()
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("error")


async def test_batch_handlers_get_runs_of_one_type_in_order(messaging_settings: Settings, publish) -> None:
    svc = await fresh_service(messaging_settings)
    order: list[str] = []
    runs: list[int] = []

    async def sessions(session: AsyncSession, events) -> None:
        runs.append(len(events))
        order.extend(e.event_id for e in events)
        await session.execute(probe.insert(), [{"event_id": e.event_id, "note": "batch"} for e in events])

    async def client(session: AsyncSession, event: Envelope[Any]) -> None:
        order.append(event.event_id)

    svc.consume(topics.SCHEDULING, {"ClientUpserted": client}, batch_handlers={"SessionCompleted": sessions})
    published = [
        example_event("SessionCompleted-self-pay"),
        example_event("SessionCompleted-self-pay"),
        example_event("ClientUpserted-adult"),
        example_event("SessionCompleted-self-pay"),
    ]
    for event in published:  # before the consumer starts, so one fetch holds them all
        await publish(topics.SCHEDULING, event, key="client-batch", settings=svc.settings)
    await svc.start()
    try:
        await eventually(lambda: len(order) == 4)
    finally:
        await svc.stop()
    assert order == [e["event_id"] for e in published]
    assert runs == [2, 1], "the two sessions fetched together are one run; the ClientUpserted splits the third off"


async def test_a_relay_that_finds_the_lock_held_tries_again_before_the_next_poll(messaging_settings: Settings) -> None:
    """Another replica's relay may hold the lock having read before our commit: our row must go
    out once that lock is free, not wait for the poll (here a minute)."""
    svc = await fresh_service(messaging_settings.model_copy(update={"outbox_poll_ms": 60_000}))
    await svc.start()
    try:
        other_replica = await svc.db.engine.connect()
        transaction = await other_replica.begin()
        await other_replica.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": svc.relay._lock_id})
        marker = _notification(7)
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, [("client-l", marker)])
        await asyncio.sleep(0.3)  # our relay's wake-up has met the held lock by now
        await transaction.commit()
        await other_replica.close()

        def published(records: list[Any]) -> bool:
            return any(marker.event_id.encode() in r.value for r in records)

        records = await read_topic(svc.settings, topics.PORTAL, until=published, timeout=10)
        assert published(records), "left for the minute-long poll"
    finally:
        await svc.stop()


async def test_a_relay_pass_reports_more_only_after_a_full_batch(messaging_settings: Settings) -> None:
    """The drain goes on after a full batch (more may wait) and stops after a short one: that
    one read every row committed before it, so another pass at once would find none."""
    svc = await fresh_service(messaging_settings)
    publisher = KafkaPublisher(svc.settings)
    await publisher.start()
    try:
        relay = OutboxRelay(svc.db, svc.outbox_table, publisher, batch_size=2)
        while await relay.relay_pass():  # rows an earlier test's service left in the shared outbox
            pass
        events = [_notification(i) for i in range(3)]
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, [("client-b", e) for e in events])
        assert [await relay.relay_pass(), await relay.relay_pass()] == [1, 0]
    finally:
        await publisher.stop()
    records = await read_topic(svc.settings, topics.PORTAL, until=lambda rs: len(rs) >= 3)
    assert [dict((k, v.decode()) for k, v in r.headers)["event-id"] for r in records] == [e.event_id for e in events]


async def test_an_event_committed_while_the_relay_publishes_goes_out_at_once(messaging_settings: Settings) -> None:
    """A short batch ends the drain, so what commits during its publish must wake the next pass
    (here the poll is a minute away)."""
    svc = await fresh_service(messaging_settings.model_copy(update={"outbox_poll_ms": 60_000}))
    first, late = _notification(1), _notification(2)
    real = svc.relay.publisher

    class StagesWhilePublishing:
        """The real publisher; during its first publish another transaction stages `late`."""

        async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
            await real.publish_many(messages)
            if any(m.headers["event-id"] == first.event_id for m in messages):
                async with svc.db.transaction() as session:
                    await svc.outbox.stage(session, topics.PORTAL, [("client-w", late)])

    svc.relay.publisher = StagesWhilePublishing()
    await svc.start()
    try:
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, [("client-w", first)])
        records = await read_topic(
            svc.settings, topics.PORTAL, until=lambda rs: any(late.event_id.encode() in r.value for r in rs), timeout=10
        )
    finally:
        await svc.stop()
    assert any(late.event_id.encode() in r.value for r in records), "left for the minute-long poll"


async def test_idle_loops_do_not_wake_each_other(messaging_settings: Settings) -> None:
    """Two commit listeners (the relay and another poller) must not ping-pong when idle."""
    svc = await fresh_service(messaging_settings)
    calls = {"relay": 0, "other": 0}
    relay_once = svc.relay.relay_once

    async def counted_relay() -> int:
        calls["relay"] += 1
        return await relay_once()

    svc.relay.relay_once = counted_relay  # type: ignore[method-assign]
    other_wake = asyncio.Event()
    svc.db.on_commit("other", other_wake.set)

    async def other_step() -> int:
        calls["other"] += 1
        async with svc.db.transaction() as session:
            await session.execute(select(1))
        return 0

    async def other_loop() -> None:
        await drain_then_wait(other_step, other_wake, poll_seconds=0.02, log=logging.getLogger("t"), what="other")

    svc.background(other_loop)
    await svc.start()
    try:
        await asyncio.sleep(1)
    finally:
        await svc.stop()
    # Polling every 20 ms gives about 50 passes a second each; a wake-up loop gives thousands.
    assert calls["relay"] < 120 and calls["other"] < 120, calls


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_a_failed_dlq_publish_is_retried_so_the_poison_is_never_skipped(
    messaging_settings: Settings, publish
) -> None:
    """If the DLQ publish fails, the batch's offsets must not be committed by the next batch:
    the poison message would vanish. The publish is retried until the DLQ has it."""
    svc = await fresh_service(messaging_settings)
    handler = Probe()
    consumer = svc.consume(topics.SCHEDULING, {"ClientUpserted": handler})
    real = consumer.dlq_publisher
    refused: list[int] = []

    class BrokerDownForTheDlq:
        async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
            if len(refused) < 2:
                refused.append(len(messages))
                raise ConnectionError("broker unreachable")
            await real.publish_many(messages)

    consumer.dlq_publisher = BrokerDownForTheDlq()
    await svc.start()
    try:
        await publish(topics.SCHEDULING, b"{poison", key="client-dlq", settings=svc.settings)
        await eventually(lambda: refused)
        after = example_event("ClientUpserted-adult")
        await publish(topics.SCHEDULING, after, key="client-dlq", settings=svc.settings)
        dlq = await read_topic(svc.settings, topics.dlq(topics.SCHEDULING), until=lambda rs: len(rs) >= 1, timeout=10)
        assert len(dlq) == 1 and dlq[0].value == b"{poison"
        await eventually(lambda: _contains(svc, after["event_id"]))
    finally:
        await svc.stop()


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_deadlocks_and_serialization_failures_are_retried_never_dead_lettered(
    messaging_settings: Settings, publish
) -> None:
    """Postgres aborting a transaction for a lost race is not the event's fault: more failures
    in a row than CONSUMER_MAX_RETRIES still end with the event applied, and no DLQ entry."""
    svc = await fresh_service(messaging_settings)
    raised: list[str] = []

    async def racing(session: AsyncSession, event: Envelope[Any]) -> None:
        if len(raised) <= svc.settings.consumer_max_retries + 1:
            code = "40P01" if len(raised) % 2 else "40001"
            raised.append(code)
            await session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = '{code}'; END $$"))
        await session.execute(probe.insert().values(event_id=event.event_id, note="applied"))

    svc.consume(topics.SCHEDULING, {"ClientUpserted": racing, "SessionCompleted": racing})
    await svc.start()
    try:
        event = example_event("ClientUpserted-adult")
        await publish(topics.SCHEDULING, event, key="client-race", settings=svc.settings)
        await eventually(lambda: _contains(svc, event["event_id"]))
        poison = b"{marker"
        await publish(topics.SCHEDULING, poison, key="client-race", settings=svc.settings)
        dlq = await read_topic(svc.settings, topics.dlq(topics.SCHEDULING), until=lambda rs: len(rs) >= 1)
    finally:
        await svc.stop()
    assert set(raised) == {"40001", "40P01"} and len(raised) > svc.settings.consumer_max_retries
    assert [r.value for r in dlq] == [poison], "only the marker, never the applied event"


def _record(settings: Settings, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    """A record as the consumer fetches it (what a redelivered batch hands over again)."""
    return ConsumerRecord(
        topic=settings.topic(topics.SCHEDULING), partition=0, offset=offset, timestamp=0, timestamp_type=0,
        key=b"client-redelivered", value=value, checksum=None, serialized_key_size=18,
        serialized_value_size=len(value), headers=[],
    )  # fmt: skip


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_a_poison_message_redelivered_after_a_rebalance_is_dead_lettered_once(
    messaging_settings: Settings,
) -> None:
    """A batch whose offsets were not committed yet (a rebalance took its partition, or the
    commit failed) comes again, to this replica or another, possibly while the first still
    holds it: its poison message is in the DLQ once, not once per delivery."""
    svc = await fresh_service(messaging_settings)
    consumer = svc.consume(topics.SCHEDULING, {"ClientUpserted": Probe()})
    assert svc._kafka_publisher is not None
    await svc._kafka_publisher.start()
    try:
        first, second, marker = (_record(svc.settings, n, f"{{poison {n}".encode()) for n in (10, 11, 12))
        await consumer.process([first])
        await consumer.process([first])  # redelivered after a rebalance
        await asyncio.gather(consumer.process([second]), consumer.process([second]))  # two replicas at once
        await consumer.process([marker])
        dlq = await read_topic(svc.settings, topics.dlq(topics.SCHEDULING), until=lambda rs: len(rs) >= 3)
    finally:
        await svc._kafka_publisher.stop()
        await svc.db.dispose()
    assert sorted(r.value for r in dlq) == [b"{poison 10", b"{poison 11", b"{poison 12"]
    assert len(consumer.failures) == 3
