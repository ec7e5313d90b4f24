"""Kafka offset commits, coalesced. A consumer commits only the offsets of records whose
database transaction has committed, and at most every `interval_seconds`: a commit is a broker
round trip, and committing after every small batch cost more than applying it. The last
offsets are committed `interval_seconds` after their batch at the latest. Committing less
often only means more redelivery after a crash, which the inbox skips (or, for a projection,
the upsert rewrites with the same row)."""

import asyncio
import logging
import math
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

log = logging.getLogger(__name__)


class OffsetCommits:
    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._consumer: Any = None
        self._pending: dict[TopicPartition, int] = {}
        self._last = -math.inf
        self._lock = asyncio.Lock()
        self._later: asyncio.Task[None] | None = None

    async def applied(self, consumer: Any, records: Iterable[ConsumerRecord[Any, Any]]) -> None:
        """`records` are in the database: commit their offsets now if the last commit is
        `interval_seconds` old, else in a moment (with whatever is applied meanwhile)."""
        self._consumer = consumer
        last: dict[tuple[str, int], int] = {}
        for r in records:  # a partition's records come in offset order
            last[r.topic, r.partition] = r.offset
        for (topic, partition), offset in last.items():
            tp = TopicPartition(topic, partition)
            self._pending[tp] = max(self._pending.get(tp, 0), offset + 1)
        wait = self._last + self.interval_seconds - asyncio.get_running_loop().time()
        if wait <= 0:
            await self.commit()
        elif self._later is None or self._later.done():
            self._later = asyncio.create_task(self._commit_after(wait))

    async def _commit_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.commit()

    async def commit(self) -> None:
        """Commit what is pending; one commit at a time, so an older one never lands last."""
        async with self._lock:
            if not self._pending:
                return
            offsets, self._pending = self._pending, {}
            self._last = asyncio.get_running_loop().time()
            try:
                if isinstance(self._consumer, AIOKafkaConsumer):
                    await self._consumer.commit(offsets)
                else:  # TestKafkaBroker's consumer keeps no offsets
                    await self._consumer.commit()
            except (KafkaError, ConsumerStoppedError) as exc:  # a rebalance took the partition, a stop
                log.warning("offset commit failed (%r): those records come again and change nothing twice", exc)

    async def close(self) -> None:
        """Commit what is pending (a service stopping)."""
        if self._later is not None:
            self._later.cancel()
        if self._consumer is not None:
            await self.commit()
