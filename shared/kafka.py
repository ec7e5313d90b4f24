"""Kafka plumbing: the idempotent producer the outbox relay and DLQ use."""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from shared.outbox import OutboundMessage


class KafkaPublisher:
    """aiokafka producer with idempotence and acks=all: in-order per partition, no duplicates
    from producer retries."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """aiokafka binds its producer to the running loop, so it is made here, not in __init__."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer:
            await self._producer.stop()
            self._producer = None

    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaPublisher.start() was not awaited")
        futures = [
            await self._producer.send(
                m.topic,
                value=m.value,
                key=m.key.encode(),
                headers=[(k, v.encode()) for k, v in m.headers.items()],
            )
            for m in messages
        ]
        await asyncio.gather(*futures)
