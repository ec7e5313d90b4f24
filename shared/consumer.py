"""Consume → apply in one DB transaction with the inbox → commit the offset. Bad messages and
handlers that keep failing go to `<topic>.dlq` with the reason in headers; the consumer moves on.

Delivery: a fetched batch is applied in one transaction (inbox rows claimed in bulk); only
after that commits are its Kafka offsets committed (FastStream's MANUAL ack policy, never its
default ACK_FIRST; coalesced by `shared.offsets.OffsetCommits`). If the batch fails, its
events are retried one by one so a single poison message cannot hold back the rest. Database
or broker outages are not the message's fault: those are retried without limit and never
dead-lettered.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, groupby
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import topics
from shared.db import Database
from shared.events import EVENT_MODELS, BadEvent, Envelope, parse_event
from shared.inbox import claim, claim_ids
from shared.logs import describe_error
from shared.metrics import DEAD_LETTERED, EVENTS_CONSUMED
from shared.offsets import OffsetCommits
from shared.outbox import OutboundMessage, Publisher
from shared.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope[Any]], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[Envelope[Any]]], Awaitable[None]]


def consumer_group(settings: Settings, service: str, topic: str) -> str:
    """One group per service and topic: a service's consumers of different topics never make
    each other rebalance, and replicas of the service share each topic's partitions. The topic
    prefix is part of it, so runs isolated by prefix on one broker never share a group."""
    return f"{settings.topic_prefix}{service}.{topic}"


RETRY_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})
"""Serialization failure and deadlock: Postgres aborted the transaction because of another
one, not because of the message; running it again succeeds. Likewise a server shutting down,
crashed or still starting up ("the database system is starting up"), or out of connections."""
RETRY_SQLSTATE_CLASSES = ("08",)
"""Connection exceptions."""


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble or a lost race (retry forever) as opposed to a message that
    cannot be applied."""
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError | OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    return exc.connection_invalidated or sqlstate in RETRY_SQLSTATES or sqlstate.startswith(RETRY_SQLSTATE_CLASSES)


def header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


def dead_letter_id(record: ConsumerRecord[Any, Any]) -> str:
    """The inbox id of a dead letter: the record's coordinates (not its event id, so a fixed
    event replayed from the DLQ onto its topic is applied, not taken for a duplicate)."""
    return f"dlq:{record.topic}:{record.partition}:{record.offset}"


async def raw_records(message: StreamMessage[Any]) -> tuple[ConsumerRecord[Any, Any], ...]:
    """The fetched records as they are: `EventConsumer.process` parses each once from its bytes
    (FastStream's own decoder json-loads every body first, for nothing)."""
    raw = message.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


class WaitingBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber sleeps `batch_timeout_ms` after every empty poll: an event
    that arrives meanwhile waits out the sleep (up to that long per hop), and an idle consumer
    wakes twice a period. This one waits in aiokafka's `getmany`, which returns as soon as
    records arrive, so the wait can be long: `batch_timeout_ms` only bounds how often an idle
    consumer looks at whether it is still running."""

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[Any, Any], ...]:
        fetched = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        return tuple(chain.from_iterable(fetched.values()))


@dataclass
class Failure:
    record: ConsumerRecord[Any, Any]
    reason: str
    error_type: str
    attempts: int
    envelope: Envelope[Any] | None = None


@dataclass
class EventConsumer:
    """Applies the events of one topic for one service. `handlers` maps event_type → handler;
    event types without a handler are acknowledged and ignored. A `batch_handlers` entry takes
    each run of consecutive events it handles at once (bulk SQL for high-volume ingest); one
    function registered for several types takes a run that mixes them, in order."""

    service: str
    topic: str
    db: Database
    inbox: Table
    handlers: dict[str, Handler]
    dlq_publisher: Publisher
    settings: Settings
    max_retries: int = 3
    backoff_seconds: float = 0.2
    failures: list[Failure] = field(default_factory=list)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    unclaimed: frozenset[str] = frozenset()
    """Event types whose handler is idempotent by itself (a projection upsert where the newest
    event wins: applied again, it leaves the same row): not claimed in the inbox, which would
    otherwise grow by every session ever completed and cost a fifth of ingest."""

    def __post_init__(self) -> None:
        self.commits = OffsetCommits(self.settings.consumer_commit_interval_ms / 1000)

    def handles(self, event_type: str) -> bool:
        return event_type in self.handlers or event_type in self.batch_handlers

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        envelopes: list[tuple[ConsumerRecord[Any, Any], Envelope[Any]]] = []
        dead: list[Failure] = []
        for record in records:
            event_type = header(record, "event-type")
            if event_type in EVENT_MODELS and not self.handles(event_type):
                # Not parsed: a type this service does not take is the business (and the dead
                # letter, if it is malformed) of the services that do.
                EVENTS_CONSUMED.labels(self.service, event_type, "ignored").inc()
                continue
            try:
                envelope = parse_event(record.value, event_type)
            except BadEvent as exc:
                dead.append(Failure(record, str(exc), "BadEvent", 0))
                continue
            if self.handles(envelope.event_type):
                envelopes.append((record, envelope))
            else:
                EVENTS_CONSUMED.labels(self.service, envelope.event_type, "ignored").inc()
        if envelopes:
            try:
                await self._apply_with_transient_retry([e for _, e in envelopes])
            except Exception as exc:
                log.warning("batch of %d failed (%s); applying one by one", len(envelopes), describe_error(exc))
                for record, envelope in envelopes:
                    failure = await self._apply_one(record, envelope)
                    if failure:
                        dead.append(failure)
        if dead:
            await self._dead_letter(dead)

    async def _apply(self, envelopes: Sequence[Envelope[Any]]) -> None:
        outcomes: Counter[tuple[str, str]] = Counter()
        async with self.db.transaction() as session:
            fresh = await claim(session, self.inbox, [e for e in envelopes if e.event_type not in self.unclaimed])
            todo = []
            for envelope in envelopes:
                new = envelope.event_type in self.unclaimed or envelope.event_id in fresh
                outcome = "applied" if new else "duplicate"
                fresh.discard(envelope.event_id)
                outcomes[envelope.event_type, outcome] += 1
                if outcome == "applied":
                    todo.append(envelope)
            # A run of consecutive events that one batch handler takes (it may take several types) goes at once.
            for batch_handler, run in groupby(todo, key=lambda e: self.batch_handlers.get(e.event_type)):
                if batch_handler is not None:
                    await batch_handler(session, list(run))
                else:
                    for envelope in run:
                        await self.handlers[envelope.event_type](session, envelope)
        # counted once per batch, and only once it is committed (a retried batch counts once)
        for (event_type, outcome), count in outcomes.items():
            EVENTS_CONSUMED.labels(self.service, event_type, outcome).inc(count)

    async def _apply_with_transient_retry(self, envelopes: Sequence[Envelope[Any]]) -> None:
        delay = self.backoff_seconds
        while True:
            try:
                await self._apply(envelopes)
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("transient failure, retrying in %.1fs: %s", delay, describe_error(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _apply_one(self, record: ConsumerRecord[Any, Any], envelope: Envelope[Any]) -> Failure | None:
        last: Exception | None = None
        for attempt in range(1, self.max_retries + 1):
            try:
                await self._apply_with_transient_retry([envelope])
                return None
            except BadEvent as exc:  # the handler found the event itself wrong: retrying cannot help
                EVENTS_CONSUMED.labels(self.service, envelope.event_type, "dead_lettered").inc()
                return Failure(record, str(exc), type(exc).__name__, attempt, envelope)
            except Exception as exc:
                last = exc
                log.warning(
                    "%s %s failed (attempt %d/%d): %s",
                    envelope.event_type, envelope.event_id, attempt, self.max_retries, describe_error(exc),
                )  # fmt: skip
                await asyncio.sleep(self.backoff_seconds * attempt)
        assert last is not None
        EVENTS_CONSUMED.labels(self.service, envelope.event_type, "dead_lettered").inc()
        return Failure(record, describe_error(last), type(last).__name__, self.max_retries, envelope)

    async def _dead_letter(self, failures: Sequence[Failure]) -> None:
        """Publish each failure to `<topic>.dlq` exactly once. A dead letter is claimed in the
        inbox under its record's coordinates in the transaction that publishes it, so a batch
        redelivered after a rebalance (its offsets not committed yet), or another replica on
        the same record meanwhile, finds the claim and does not dead-letter it again. The one
        window left is a crash between the DLQ's ack and that commit (as for the outbox relay).
        The publish must succeed before this batch's offsets are committed (the next commit
        would skip the poison message for good): it is retried without limit."""
        claims = [(dead_letter_id(f.record), "DeadLetter") for f in failures]
        delay = self.backoff_seconds
        while True:
            try:
                async with self.db.transaction() as session:
                    fresh = await claim_ids(session, self.inbox, claims)
                    todo = [f for f in failures if dead_letter_id(f.record) in fresh]
                    if todo:
                        await self.dlq_publisher.publish_many([self._dead_letter_message(f) for f in todo])
                break
            except Exception as exc:
                log.warning("DLQ publish failed, retrying in %.1fs: %s", delay, describe_error(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for f in todo:
            r = f.record
            log.error("dead-lettered %s@%s/%s: %s", r.topic, r.partition, r.offset, f.reason)
        if len(todo) < len(failures):
            log.info("%d dead letters were already in the DLQ (redelivered batch)", len(failures) - len(todo))
        self.failures.extend(todo)
        DEAD_LETTERED.labels(self.service, self.topic).inc(len(todo))

    def _dead_letter_message(self, f: Failure) -> OutboundMessage:
        r = f.record
        headers = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
        headers.update(
            {
                "error": f.reason[:2000],
                "error-type": f.error_type,
                "attempts": str(f.attempts),
                "original-topic": r.topic,
                "original-partition": str(r.partition),
                "original-offset": str(r.offset),
                "consumer-service": self.service,
            }
        )
        key = r.key.decode(errors="replace") if isinstance(r.key, bytes) else str(r.key or "")
        value = r.value if isinstance(r.value, bytes) else str(r.value).encode()
        return OutboundMessage(topics.dlq(r.topic), key, value, headers)

    def subscribe(self, broker: KafkaBroker, *, max_records: int = 500) -> None:
        """Register on the FastStream broker: batch consumption, offsets committed after the DB
        commit (coalesced, `OffsetCommits`)."""
        consumer = self
        # The upstream's topic carries the volume: there the broker gathers records for a batch
        # (up to the bytes, at most the wait), so a batch is not a record or two at a time, each
        # with its fetch, transaction and commit; the other topics answer each event at once.
        fetch_min_bytes, fetch_max_wait_ms = (
            (self.settings.ingest_fetch_min_bytes, self.settings.ingest_fetch_max_wait_ms)
            if self.topic in topics.INGEST
            else (1, self.settings.consumer_fetch_max_wait_ms)
        )

        subscriber = broker.subscriber(
            self.settings.topic(self.topic),
            group_id=consumer_group(self.settings, self.service, self.topic),
            batch=True,
            max_records=max_records,
            batch_timeout_ms=self.settings.consumer_poll_ms,
            # aiokafka keeps one fetch in flight per broker, without the partitions whose records
            # wait in its buffer; a new event on such a partition waits for that fetch to come
            # back, which the broker holds up to this long when the others are quiet (default 500).
            fetch_max_wait_ms=fetch_max_wait_ms,
            fetch_min_bytes=fetch_min_bytes,
            auto_offset_reset="earliest",
            group_instance_id=self.settings.kafka_group_instance_id,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
            ack_policy=AckPolicy.MANUAL,
            decoder=raw_records,
            title=f"{self.service}:{self.topic}",
        )
        subscriber.__class__ = WaitingBatchSubscriber  # FastStream builds its own; no option picks the class

        @subscriber
        async def consume(records: Any) -> None:
            # The message comes from the context: FastStream resolves a parameter of the
            # message's type in a worker thread, one thread hop per batch.
            message = broker.context.get_local("message")
            await consumer.process(records)
            await consumer.commits.applied(message.consumer, records)
