"""Transactional outbox: events are written in the same transaction as the state change
that causes them, and a relay publishes them in order, keyed by client, then marks them sent.

At-least-once: a relay killed after publishing but before marking re-publishes on restart;
consumers dedupe by event_id (inbox). One relay per service publishes at a time (advisory
lock), so order holds with any number of replicas.
"""

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, insert_rows
from shared.events import Envelope
from shared.metrics import OUTBOX_PARKED, OUTBOX_PUBLISHED
from shared.polling import drain_then_wait
from shared.settings import Settings

log = logging.getLogger(__name__)

OUTBOX_SIGNAL = "outbox"
_BATCH = "outbox_batch"  # session.info: the rows an open `Outbox.batched` block staged
LOCK_RETRY_SECONDS = 0.02
"""How soon a relay tries again when another replica holds the relay lock."""


@dataclass(frozen=True)
class OutboundMessage:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]


class MessageTooLarge(Exception):
    """The broker (or the client, before sending) refused a message for its size."""


def message_size(m: OutboundMessage) -> int:
    return len(m.value) + len(m.key.encode()) + sum(len(k) + len(v.encode()) for k, v in m.headers.items())


class Publisher(Protocol):
    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        """Publish all, in order, returning only once the broker has acknowledged every one."""


class Outbox:
    """Stages events in a service's outbox table inside the caller's transaction."""

    def __init__(self, table: Table, settings: Settings) -> None:
        self.table = table
        self.settings = settings
        self._insert = insert(table)  # built once: its compiled form is found by a memoized cache key

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
        if not rows:
            return
        batch = session.info.get(_BATCH)
        if batch is not None:
            batch.extend(rows)  # `batched` writes them at the end of its block
            return
        await self._write(session, rows)

    async def _write(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        await insert_rows(session, self._insert, rows)
        Database.signal(session, OUTBOX_SIGNAL)

    @asynccontextmanager
    async def batched(self, session: AsyncSession) -> AsyncIterator[None]:
        """The events staged in this block are written together at its end: one INSERT, one round
        trip, instead of one per `stage` (a cash payment stages PaymentRecorded, then the audit
        record). Still in the caller's transaction, in staging order; nothing is written if the
        block raises. Not for a block that rolls back to a savepoint: what it staged before the
        savepoint's rollback would still be written."""
        if session.info.get(_BATCH) is not None:  # inside another batch: that one writes
            yield
            return
        rows: list[dict[str, Any]] = []
        session.info[_BATCH] = rows
        try:
            yield
        finally:
            session.info.pop(_BATCH, None)
        if rows:
            await self._write(session, rows)


class OutboxRelay:
    """Publishes unsent outbox rows in id order; wakes on local commits, polls otherwise.
    A row too large for Kafka is parked (`parked_reason`, the `outbox_parked_total` metric) and
    the rest are published: one oversize event must not stop the relay for every tenant."""

    def __init__(
        self,
        db: Database,
        table: Table,
        publisher: Publisher,
        *,
        poll_seconds: float = 0.05,
        batch_size: int = 500,
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self.db = db
        self.table = table
        self.publisher = publisher
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.max_message_bytes = max_message_bytes
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock_id = zlib.crc32(f"outbox:{db.schema}".encode())
        db.on_commit(OUTBOX_SIGNAL, self._wake.set)

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows it handled, published or parked (0 if another
        replica holds the lock: then it wakes itself again after LOCK_RETRY_SECONDS)."""
        async with self.db.transaction() as session:
            got_lock = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": self._lock_id})
            if not got_lock:
                # The holder may have read before our last commit: try again shortly rather than
                # leave that row to the next poll.
                asyncio.get_running_loop().call_later(LOCK_RETRY_SECONDS, self._wake.set)
                return 0
            t = self.table
            rows = (
                await session.execute(
                    select(t.c.id, t.c.topic, t.c.key, t.c.payload, t.c.event_type, t.c.event_id)
                    .where(t.c.sent_at.is_(None), t.c.parked_reason.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            messages = {
                r.id: OutboundMessage(
                    topic=r.topic,
                    key=r.key,
                    value=r.payload,
                    headers={"event-type": r.event_type, "event-id": r.event_id},
                )
                for r in rows
            }
            parked = {
                row_id: f"{message_size(m)} bytes, over the {self.max_message_bytes}-byte limit"
                for row_id, m in messages.items()
                if message_size(m) > self.max_message_bytes
            }
            parked |= await self._publish([(row_id, m) for row_id, m in messages.items() if row_id not in parked])
            for row_id, reason in parked.items():
                await session.execute(update(t).where(t.c.id == row_id).values(parked_reason=reason))
                log.error("outbox row %s (%s) parked: %s", row_id, messages[row_id].headers["event-id"], reason)
            sent = [row_id for row_id in messages if row_id not in parked]
            if sent:
                await session.execute(update(t).where(t.c.id.in_(sent)).values(sent_at=func.now()))
        OUTBOX_PUBLISHED.labels(self.db.schema).inc(len(sent))
        OUTBOX_PARKED.labels(self.db.schema).inc(len(parked))
        return len(rows)

    async def _publish(self, messages: Sequence[tuple[int, OutboundMessage]]) -> dict[int, str]:
        """Publish all; if the broker refuses one for its size, find it (one by one) and return
        what could not be published, with the reason."""
        try:
            await self.publisher.publish_many([m for _, m in messages])
            return {}
        except MessageTooLarge:
            refused = {}
            for row_id, message in messages:
                try:
                    await self.publisher.publish_many([message])
                except MessageTooLarge as exc:
                    refused[row_id] = f"refused by Kafka as too large ({message_size(message)} bytes): {exc}"
            return refused

    async def relay_pass(self) -> int:
        """One batch; non-zero only if it was full. A batch short of `batch_size` took every row
        committed before its read, and a local commit since has set the wake: a second pass at
        once would only find nothing: an empty transaction after every lone event (documents' PDFs)."""
        return await self.relay_once() // self.batch_size

    async def run(self) -> None:
        await drain_then_wait(self.relay_pass, self._wake, poll_seconds=self.poll_seconds, log=log, what="outbox relay")

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
