"""An outbox row too large for Kafka is parked (with the reason, counted in /metrics) and the
relay publishes the rest: one tenant's oversize event does not stop a service's relay."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError
from fastapi import FastAPI
from sqlalchemy import select

from shared import topics
from shared.admin import drop_database, ensure_database
from shared.events import ClientNotification, Recipient, new_envelope
from shared.kafka import client_options
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually, read_topic
from tests.integration.test_messaging import fresh_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def oversize_settings(test_settings: Settings) -> AsyncIterator[Settings]:
    settings = test_settings.model_copy(update={"pg_database": f"{test_settings.pg_database}_big"})
    await ensure_database(settings)
    yield settings
    await drop_database(settings, settings.pg_database)


def notification(practice: str, body_bytes: int) -> tuple[str, object]:
    data = ClientNotification(
        notification_id=f"n-{practice}-{body_bytes}", client_id="c1", recipient=Recipient(name="R", email=None),
        kind="bill_shared", subject="s", body_text="x" * body_bytes,
    )  # fmt: skip
    return "c1", new_envelope(practice, data)


def practices(records: list) -> list[str]:
    """The practices of the records written by the outbox (not by a test's probe)."""
    return [json.loads(r.value)["practice_id"] for r in records if r.value.startswith(b"{")]


async def parked_metric(app: FastAPI) -> float:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        text = (await http.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith('outbox_parked_total{service="billing"}')]
    return float(lines[0].split()[-1]) if lines else 0.0


@pytest.mark.parametrize(
    ("limit", "big"),
    [
        (100_000, 200_000),  # over our own limit: parked before it is sent
        (5_000_000, 2_000_000),  # under ours but over Kafka's 1 MiB: refused by the client, found, parked
    ],
)
@pytest.mark.expect_error_log
async def test_an_oversize_row_is_parked_and_the_others_are_published(
    oversize_settings: Settings, limit: int, big: int
) -> None:
    svc: Service = await fresh_service(oversize_settings.model_copy(update={"kafka_max_message_bytes": limit}))
    app = svc.http_app([], title="probe")
    before = await parked_metric(app)
    await svc.start()
    try:
        staged = [notification("p-small-1", 10), notification("p-huge", big), notification("p-small-2", 10)]
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, staged)

        records = await read_topic(svc.settings, topics.PORTAL, until=lambda rs: "p-small-2" in practices(rs))
        # at least once: the client-side refusal path may publish an event twice (consumers dedupe)
        assert sorted(set(practices(records))) == ["p-small-1", "p-small-2"]
        t = svc.outbox_table
        huge = staged[1][1].event_id  # type: ignore[attr-defined]
        ids = [e.event_id for _, e in staged]  # type: ignore[attr-defined]

        async def settled() -> list:
            """The rows once the relay's transaction has committed (it publishes, then marks)."""
            async with svc.db.transaction() as session:
                query = select(t.c.event_id, t.c.sent_at, t.c.parked_reason).where(t.c.event_id.in_(ids))
                rows = (await session.execute(query)).all()
            return rows if all(r.sent_at or r.parked_reason for r in rows) else []

        rows = await eventually(settled)
        [parked] = [r for r in rows if r.event_id == huge]
        assert parked.sent_at is None
        assert "too large" in parked.parked_reason or f"over the {limit}-byte limit" in parked.parked_reason
        assert all(r.sent_at is not None and r.parked_reason is None for r in rows if r.event_id != huge)
        assert await parked_metric(app) == before + 1
    finally:
        await svc.stop()


async def limit_topic(settings: Settings, topic: str, *, max_bytes: int) -> None:
    """Set the topic's own `max.message.bytes`, and return once the broker refuses a larger
    record (the controller commits the change before the broker applies it)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        limit = {"max.message.bytes": str(max_bytes)}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(topic), limit)])
    finally:
        await admin.close()
    probe = AIOKafkaProducer(**client_options(settings), acks="all")
    await probe.start()
    try:

        async def refused() -> bool:
            try:
                await probe.send_and_wait(settings.topic(topic), b"x" * (2 * max_bytes))
            except MessageSizeTooLargeError:
                return True
            return False

        await eventually(refused)
    finally:
        await probe.stop()


@pytest.mark.expect_error_log
async def test_a_row_the_topic_refuses_is_parked_and_its_partition_keeps_flowing(oversize_settings: Settings) -> None:
    """The topic's own limit is below ours, so the broker refuses the batch after the producer
    numbered it: the rows after it on the same partition (same client) must still be published."""
    svc: Service = await fresh_service(oversize_settings.model_copy(update={"kafka_max_message_bytes": 5_000_000}))
    await limit_topic(svc.settings, topics.PORTAL, max_bytes=4000)
    await svc.start()
    try:
        staged = [notification("p-before", 10), notification("p-refused", 20_000), notification("p-after", 10)]
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, staged)
        records = await read_topic(svc.settings, topics.PORTAL, until=lambda rs: "p-after" in practices(rs))
        assert sorted(set(practices(records))) == ["p-after", "p-before"]
        later = [notification("p-later", 10)]
        async with svc.db.transaction() as session:
            await svc.outbox.stage(session, topics.PORTAL, later)
        await read_topic(svc.settings, topics.PORTAL, until=lambda rs: "p-later" in practices(rs))
        t = svc.outbox_table
        async with svc.db.transaction() as session:
            refused = (
                await session.execute(
                    select(t.c.sent_at, t.c.parked_reason).where(t.c.event_id == staged[1][1].event_id)
                )
            ).one()  # type: ignore[attr-defined]
        assert refused.sent_at is None and "refused by Kafka as too large" in refused.parked_reason
    finally:
        await svc.stop()
