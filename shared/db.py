"""Database access: one async engine per service, pinned to that service's schema, and the
messaging tables (outbox, inbox, idempotency keys) that every service schema carries."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Executable,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


async def insert_rows(session: AsyncSession, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """Run a prebuilt INSERT for `rows`: one row (the usual case) as a plain execute, several as
    one executemany batch (SQLAlchemy's batch path costs more for a single row)."""
    await session.execute(statement, rows[0] if len(rows) == 1 else rows)


def service_metadata(schema: str) -> MetaData:
    """A service's MetaData with the outbox, inbox and idempotency tables already in it."""
    metadata = MetaData(schema=schema, naming_convention=NAMING)
    Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", String, nullable=False, unique=True),
        Column("topic", String, nullable=False),
        Column("key", String, nullable=False),
        Column("event_type", String, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        # why the relay set this row aside instead of publishing it (too large for Kafka)
        Column("parked_reason", Text),
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )
    Table(
        "inbox",
        metadata,
        Column("event_id", String, primary_key=True),
        Column("event_type", String, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    Table(
        "idempotency_keys",
        metadata,
        Column("practice_id", String, primary_key=True),
        Column("key", String, primary_key=True),
        Column("request_hash", String, nullable=False),
        Column("status_code", Integer),
        Column("response", JSONB),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return metadata


SIGNALS = "after_commit_signals"


def _drop_dead(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout: a pooled connection whose socket the server closed (a restart, a killed
    backend) is refused, and with it every connection pooled before now; the pool reconnects
    (SQLAlchemy's checkout-event disconnect handling). asyncpg sees the close on its own, so
    this costs no round trip. A connection that dies while in use still fails that one
    transaction, and invalidates the pool the same way: consumers retry it, HTTP callers retry
    with their Idempotency-Key."""
    if dbapi_connection.driver_connection.is_closed():
        raise InvalidatePoolError("connection closed by the server")


class Database:
    """Engine + sessions for one schema. `transaction()` is the unit of work; listeners run
    after each commit (the outbox relay wakes up on them)."""

    def __init__(self, url: str, schema: str, *, pool_size: int = 20) -> None:
        self.schema = schema
        self.engine: AsyncEngine = create_async_engine(
            url,
            # Up to `pool_size` connections, each opened when first needed and then kept. No
            # overflow: SQLAlchemy closes an overflow connection when it is returned, so every burst
            # past the pool (notifications fetching 20 PDFs at once) paid a Postgres fork, a SCRAM
            # sign-in and asyncpg's setup per checkout: 10 new connections a second in a month-end.
            pool_size=pool_size,
            max_overflow=0,
            # No pre-ping (3 round trips per checkout: BEGIN, SELECT, ROLLBACK): `_drop_dead` below
            # finds the connections a Postgres restart closed without asking the server.
            pool_pre_ping=False,
            # An error's text must not carry the row's values (names, emails) into logs or DLQ headers.
            hide_parameters=True,
            connect_args={"server_settings": {"search_path": schema}},
        )
        event.listen(self.engine.sync_engine.pool, "checkout", _drop_dead)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._after_commit: dict[str, list[Callable[[], None]]] = {}

    def on_commit(self, signal: str, callback: Callable[[], None]) -> None:
        """Call `callback` after each commit of a transaction that raised `signal` (see `signal`).
        Only those: a listener woken by every commit would wake the others in turn, forever."""
        self._after_commit.setdefault(signal, []).append(callback)

    @staticmethod
    def signal(session: AsyncSession, name: str) -> None:
        """Mark the transaction: its commit wakes the `name` listeners (e.g. the outbox relay)."""
        session.info.setdefault(SIGNALS, set()).add(name)

    @asynccontextmanager
    async def transaction(self, *, isolation_level: str | None = None) -> AsyncIterator[AsyncSession]:
        """`isolation_level`: Postgres' own (READ COMMITTED) unless given, e.g. by `snapshot`."""
        async with self.sessions() as session:
            async with session.begin():
                if isolation_level is not None:
                    await session.connection(execution_options={"isolation_level": isolation_level})
                yield session
            signals = session.info.pop(SIGNALS, set())
        for name in signals:
            for callback in self._after_commit.get(name, ()):
                callback()

    def snapshot(self) -> AbstractAsyncContextManager[AsyncSession]:
        """For a read of several statements: a transaction whose statements all see one moment
        (REPEATABLE READ). Under the default READ COMMITTED each statement sees the latest commit:
        a payment applied between reading a bill's row and its payments showed the old status
        beside the new balance, and a page that waits for both to agree stopped waiting."""
        return self.transaction(isolation_level="REPEATABLE READ")

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)

    async def dispose(self) -> None:
        await self.engine.dispose()
