"""Every Kafka client of a service waits `KAFKA_RETRY_BACKOFF_MS` between tries of an unreachable
broker: the producer, admin and test clients (built from `client_options`) and FastStream's
consumers (the service's broker builds them)."""

from services.billing.db import metadata
from shared import topics
from shared.kafka import client_options
from shared.runtime import Service
from shared.settings import Settings


def test_the_clients_retry_at_the_configured_pace() -> None:
    settings = Settings(kafka_retry_backoff_ms=700)
    assert client_options(settings)["retry_backoff_ms"] == 700
    svc = Service("billing", settings, metadata)
    assert svc.broker.config.builder.keywords["retry_backoff_ms"] == 700  # the consumers' factory


def test_only_the_ingest_topic_is_fetched_in_gathered_batches() -> None:
    """On scheduling.events the broker gathers up to INGEST_FETCH_MIN_BYTES for at most
    INGEST_FETCH_MAX_WAIT_MS (batches of many sessions under load); a payment or a share on the
    other topics is fetched as soon as it is there."""
    settings = Settings(ingest_fetch_min_bytes=32768, ingest_fetch_max_wait_ms=30, consumer_fetch_max_wait_ms=60)
    svc = Service("billing", settings, metadata)
    for topic in (topics.SCHEDULING, topics.PAYMENTS, topics.DOCUMENTS):
        svc.consume(topic, {})
    fetch = {
        sub.topics[0].name: (sub._connection_args["fetch_min_bytes"], sub._connection_args["fetch_max_wait_ms"])
        for sub in svc.broker.subscribers
    }
    assert fetch == {
        settings.topic(topics.SCHEDULING): (32768, 30),
        settings.topic(topics.PAYMENTS): (1, 60),
        settings.topic(topics.DOCUMENTS): (1, 60),
    }
