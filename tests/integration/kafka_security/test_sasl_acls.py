"""Kafka is not trusted blindly: clients log in (SCRAM-SHA-512) over TLS, and each service may
write only its own topics. Against a real broker with a SASL_SSL listener and ACLs."""

import json
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from services.billing.app import build
from shared import admin, topics
from shared.auth import issue_token
from shared.kafka import KafkaPublisher, client_options
from shared.outbox import OutboundMessage
from tests.conftest import eventually, example_event, read_topic
from tests.integration.kafka_security.conftest import SecureKafka


def message(settings, topic: str) -> OutboundMessage:
    event = example_event("ClientUpserted-adult")
    return OutboundMessage(settings.topic(topic), "c1", json.dumps(event).encode(), {"event-type": "ClientUpserted"})


async def test_billing_may_write_billing_events_but_is_refused_on_payments_events(secure_kafka: SecureKafka) -> None:
    settings = secure_kafka.settings("billing")
    publisher = KafkaPublisher(settings)
    await publisher.start()
    try:
        await publisher.publish_many([message(settings, topics.BILLING)])
        with pytest.raises(TopicAuthorizationFailedError):
            await publisher.publish_many([message(settings, topics.PAYMENTS)])
    finally:
        await publisher.stop()
    records = await read_topic(secure_kafka.settings("documents"), topics.BILLING, until=lambda rs: len(rs) >= 1)
    assert [r.key for r in records] == [b"c1"]


async def test_a_wrong_password_is_refused(secure_kafka: SecureKafka) -> None:
    producer = AIOKafkaProducer(**client_options(secure_kafka.settings("billing", password="guessed")))
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


async def test_a_broker_whose_certificate_is_not_from_the_configured_ca_is_refused(secure_kafka: SecureKafka) -> None:
    """Without the CA file the client checks the broker against the system CAs: the test CA is
    not one of them, so the TLS handshake fails before any password is sent."""
    settings = secure_kafka.settings("billing", kafka_ssl_cafile=None)
    producer = AIOKafkaProducer(**client_options(settings))
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_billing_runs_on_the_secure_broker_consumer_relay_and_dlq(secure_kafka: SecureKafka) -> None:
    """The real billing service as user `billing`: its consumer (a consumer group) reads
    scheduling events, its relay publishes BillCreated, a bad event reaches the DLQ."""
    database = f"{secure_kafka.base.pg_database}_sasl"
    settings = secure_kafka.settings("billing", pg_database=database, billing_automation_interval_s=0)
    await admin.ensure_database(settings)
    svc, app = build(settings)
    await svc.start()
    scheduling = KafkaPublisher(secure_kafka.settings("scheduling"))
    await scheduling.start()
    practice, client_id = f"practice-{uuid.uuid4().hex[:8]}", f"client-{uuid.uuid4().hex[:6]}"
    try:
        client = example_event("ClientUpserted-adult")
        client["data"]["client"]["id"] = client_id
        session = example_event("SessionCompleted-self-pay")
        session["data"]["session"].update(id=f"s-{uuid.uuid4().hex[:6]}", client_id=client_id)
        sends = [{**client, "practice_id": practice}, {**session, "practice_id": practice}]
        await scheduling.publish_many(
            [OutboundMessage(settings.topic(topics.SCHEDULING), client_id, json.dumps(e).encode(), {}) for e in sends]
            + [OutboundMessage(settings.topic(topics.SCHEDULING), client_id, b"not an event", {})]
        )
        token = issue_token(practice, "staff", None, secret=settings.auth_secret)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as http:

            async def unbilled() -> list:
                return (await http.get("/v1/unbilled-sessions", headers=headers)).json()["items"]

            [item] = await eventually(unbilled)
            r = await http.post(
                "/v1/bills", json={"client_id": client_id, "session_ids": [item["session_id"]]}, headers=headers
            )
            assert r.status_code == 201, r.text
        bill_id = r.json()["id"]

        def created(records: list) -> bool:
            return any(json.loads(r.value)["data"].get("bill", {}).get("id") == bill_id for r in records)

        assert created(await read_topic(secure_kafka.settings("documents"), topics.BILLING, until=created))
        dead = await read_topic(
            secure_kafka.settings("admin"), topics.dlq(topics.SCHEDULING), until=lambda rs: len(rs) >= 1
        )
        assert [r.value for r in dead] == [b"not an event"]
    finally:
        await scheduling.stop()
        await svc.stop()
        await admin.drop_database(settings, database)
