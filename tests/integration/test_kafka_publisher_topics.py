"""The publisher keeps metadata for every topic it publishes to (real broker). In CI the billing
relay stalled for 40 s: one pass published to a topic its producer knew untracked and to a topic
created after it started; the refresh for the new topic dropped the known one, whose queued batch
then waited for a leader until it expired."""

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.kafka import KafkaPublisher, client_options
from shared.outbox import OutboundMessage
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def create_topic(settings: Settings, name: str) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()


def message(topic: str) -> OutboundMessage:
    return OutboundMessage(topic=topic, key="client-1", value=b"{}", headers={"event-type": "Probe"})


async def test_a_pass_to_a_known_and_a_new_topic_is_acknowledged_at_once(test_settings: Settings) -> None:
    known, new = (test_settings.topic(f"probe-{uuid.uuid4().hex[:8]}") for _ in range(2))
    await create_topic(test_settings, known)
    publisher = KafkaPublisher(test_settings)
    await publisher.start()
    try:
        client = publisher._producer.client  # type: ignore[union-attr]
        # What aiokafka does on its own every metadata_max_age_ms while it tracks no topic:
        # a refresh of all topics, after which `known` is in its metadata, untracked.
        await client.force_metadata_update()
        assert client.cluster.partitions_for_topic(known) is not None
        await create_topic(test_settings, new)
        # The batch of `known` waited 40 s (request_timeout_ms) before the fix; 20 s tells the two apart.
        async with asyncio.timeout(20):
            await publisher.publish_many([message(known), message(new)])
        await client.force_metadata_update()
        assert client.cluster.partitions_for_topic(known) is not None
    finally:
        await publisher.stop()
