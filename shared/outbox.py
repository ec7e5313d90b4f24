"""Transactional outbox: events are written in the same transaction as the state change
that causes them, and a relay publishes them in order, keyed by client, then marks them sent.

At-least-once: a relay killed after publishing but before marking re-publishes on restart;
consumers dedupe by event_id (inbox). One relay per service publishes at a time (advisory
lock), so order holds with any number of replicas.
"""

import asyncio
import logging
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.events import Envelope
from shared.metrics import OUTBOX_PUBLISHED
from shared.polling import drain_then_wait
from shared.settings import Settings

log = logging.getLogger(__name__)

OUTBOX_SIGNAL = "outbox"


@dataclass(frozen=True)
class OutboundMessage:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]


class Publisher(Protocol):
    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        """Publish all, in order, returning only once the broker has acknowledged every one."""


class Outbox:
    """Stages events in a service's outbox table inside the caller's transaction."""

    def __init__(self, table: Table, settings: Settings) -> None:
        self.table = table
        self.settings = settings

    async def stage(self, session: AsyncSession, topic: str, events: Iterable[tuple[str, Envelope[Any]]]) -> None:
        """`events`: (key, envelope) pairs; key is the client id (ordering unit)."""
        rows = [
            {
                "event_id": env.event_id,
                "topic": self.settings.topic(topic),
                "key": key,
                "event_type": env.event_type,
                "payload": env.model_dump_json().encode(),
            }
            for key, env in events
        ]
        if rows:
            await session.execute(insert(self.table), rows)
            Database.signal(session, OUTBOX_SIGNAL)


class OutboxRelay:
    """Publishes unsent outbox rows in id order; wakes on local commits, polls otherwise."""

    def __init__(
        self,
        db: Database,
        table: Table,
        publisher: Publisher,
        *,
        poll_seconds: float = 0.05,
        batch_size: int = 500,
    ) -> None:
        self.db = db
        self.table = table
        self.publisher = publisher
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock_id = zlib.crc32(f"outbox:{db.schema}".encode())
        db.on_commit(OUTBOX_SIGNAL, self._wake.set)

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows it sent (0 if another replica holds the lock)."""
        async with self.db.transaction() as session:
            got_lock = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": self._lock_id})
            if not got_lock:
                return 0
            t = self.table
            rows = (
                await session.execute(
                    select(t.c.id, t.c.topic, t.c.key, t.c.payload, t.c.event_type, t.c.event_id)
                    .where(t.c.sent_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            await self.publisher.publish_many(
                [
                    OutboundMessage(
                        topic=r.topic,
                        key=r.key,
                        value=r.payload,
                        headers={"event-type": r.event_type, "event-id": r.event_id},
                    )
                    for r in rows
                ]
            )
            await session.execute(update(t).where(t.c.id.in_([r.id for r in rows])).values(sent_at=func.now()))
        OUTBOX_PUBLISHED.labels(self.db.schema).inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        await drain_then_wait(self.relay_once, self._wake, poll_seconds=self.poll_seconds, log=log, what="outbox relay")

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self.db.schema}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
