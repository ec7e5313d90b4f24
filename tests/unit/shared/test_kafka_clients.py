"""Every Kafka client of a service waits `KAFKA_RETRY_BACKOFF_MS` between tries of an unreachable
broker: the producer, admin and test clients (built from `client_options`) and FastStream's
consumers (the service's broker builds them)."""

from services.billing.db import metadata
from shared.kafka import client_options
from shared.runtime import Service
from shared.settings import Settings


def test_the_clients_retry_at_the_configured_pace() -> None:
    settings = Settings(kafka_retry_backoff_ms=700)
    assert client_options(settings)["retry_backoff_ms"] == 700
    svc = Service("billing", settings, metadata)
    assert svc.broker.config.builder.keywords["retry_backoff_ms"] == 700  # the consumers' factory
