"""Kafka plumbing: the idempotent producer the outbox relay and DLQ use."""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from shared.outbox import OutboundMessage


class KafkaPublisher:
    """aiokafka producer with idempotence and acks=all: in-order per partition, no duplicates
    from producer retries."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
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
