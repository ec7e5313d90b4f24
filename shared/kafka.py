"""Kafka plumbing: how every client connects (TLS, SASL), and the idempotent producer the outbox
relay and DLQ use."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.outbox import MessageTooLarge, OutboundMessage
from shared.settings import Settings

log = logging.getLogger(__name__)
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)
SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection keywords for any aiokafka client (producer, consumer, admin): bootstrap
    servers, and TLS (trusting `kafka_ssl_cafile`, else the system CAs) and SASL login as the
    settings say. Every client in the project connects through this."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
        "retry_backoff_ms": settings.kafka_retry_backoff_ms,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def faststream_security(settings: Settings) -> BaseSecurity | None:
    """The same connection settings in the form FastStream's KafkaBroker takes."""
    options = client_options(settings)
    tls = options.get("ssl_context")
    if "sasl_mechanism" in options:
        sasl = SASL[settings.kafka_sasl_mechanism]
        return sasl(options["sasl_plain_username"], options["sasl_plain_password"], ssl_context=tls, use_ssl=bool(tls))
    return BaseSecurity(ssl_context=tls, use_ssl=True) if tls else None


class KafkaPublisher:
    """aiokafka producer with idempotence and acks=all: in-order per partition, no duplicates
    from producer retries.

    A batch the broker refuses (too large for the topic, or any other final error) has used up
    its sequence numbers: aiokafka's producer is then out of step with the broker on that
    partition and every later send there fails with OutOfOrderSequenceNumber (aio-libs/aiokafka
    #1017). So after a refused batch the producer is replaced (a new producer id starts at
    sequence 0) and, unless the refusal was for size, the messages are sent once more: at least
    once, as the outbox promises anyway (consumers dedupe by event id).

    Every topic it publishes to is tracked for metadata (`add_topic`). aiokafka refreshes the
    metadata of tracked topics only; a topic it learnt of untracked (from a refresh of all
    topics, made while it tracked none) drops out at the next refresh, e.g. the one a send to a
    new topic makes, and a batch already queued for it then waits for a leader until it expires
    (request_timeout_ms, 40 s): a relay pass that published to a known and a new topic at once
    stalled for 40 s."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._replacing = asyncio.Lock()

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**client_options(self.settings), enable_idempotence=True, acks="all", linger_ms=2)
        await producer.start()
        return producer

    async def start(self) -> None:
        """aiokafka binds its producer to the running loop, so it is made here, not in __init__."""
        self._producer = await self._new_producer()

    async def stop(self) -> None:
        if self._producer:
            await self._producer.stop()
            self._producer = None

    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        refusal = await self._send(messages)
        if refusal is not None and not isinstance(refusal, TOO_LARGE):
            refusal = await self._send(messages)
        if isinstance(refusal, TOO_LARGE):
            raise MessageTooLarge(type(refusal).__name__) from refusal
        if refusal is not None:
            raise refusal

    async def _send(self, messages: Sequence[OutboundMessage]) -> BaseException | None:
        """Send all and wait for the broker; the first refusal, after replacing the producer."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("KafkaPublisher.start() was not awaited")
        for topic in {m.topic for m in messages}:
            producer.client.add_topic(topic)  # a no-op once tracked; else a refresh in the background
        try:
            futures = [
                await producer.send(
                    m.topic,
                    value=m.value,
                    key=m.key.encode(),
                    headers=[(k, v.encode()) for k, v in m.headers.items()],
                )
                for m in messages
            ]
        except TOO_LARGE as exc:  # refused by the client before a sequence number was taken
            return exc
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        refusal = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if refusal is not None:
            await self._replace(producer, refusal)
        return refusal

    async def _replace(self, refused: AIOKafkaProducer, reason: BaseException) -> None:
        async with self._replacing:
            if self._producer is not refused:  # another caller replaced it already
                return
            log.warning("Kafka refused a batch (%s): replacing the producer", reason.__class__.__name__)
            self._producer = await self._new_producer()
        await refused.stop()
