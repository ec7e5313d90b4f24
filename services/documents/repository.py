"""SQL for documents: versions, render-job claims (SKIP LOCKED leases), results, reads."""

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, exists, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.documents.db import documents as t
from services.documents.db import shared_sources

METADATA_COLUMNS = (
    t.c.id,
    t.c.practice_id,
    t.c.client_id,
    t.c.kind,
    t.c.source_id,
    t.c.version,
    t.c.status,
    t.c.pages,
    t.c.sha256,
    t.c.failure_reason,
    t.c.created_at,
    t.c.finished_at,
)


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    practice_id: str
    client_id: str
    kind: str
    source_id: str
    version: int
    source: dict[str, Any]
    attempts: int


async def latest_version(session: AsyncSession, practice_id: str, kind: str, source_id: str) -> int | None:
    return await session.scalar(
        select(func.max(t.c.version)).where(
            t.c.practice_id == practice_id, t.c.kind == kind, t.c.source_id == source_id
        )
    )


async def add_version(
    session: AsyncSession, *, practice_id: str, client_id: str, kind: str, source_id: str, version: int,
    source: dict[str, Any],
) -> uuid.UUID | None:  # fmt: skip
    """Insert a pending version (its render job); None if that version is already recorded."""
    return await session.scalar(
        insert(t)
        .values(
            id=uuid.uuid4(),
            practice_id=practice_id,
            client_id=client_id,
            kind=kind,
            source_id=source_id,
            version=version,
            source=source,
            status="pending",
        )
        .on_conflict_do_nothing(index_elements=[t.c.practice_id, t.c.kind, t.c.source_id, t.c.version])
        .returning(t.c.id)
    )


async def claim_job(session: AsyncSession, lease_seconds: int) -> Job | None:
    """Take the oldest pending job nobody holds (or whose holder's lease ran out). SKIP
    LOCKED lets replicas claim different jobs at once; the lease (not an open transaction)
    marks it taken while it renders, so a crashed replica's job comes back on its own."""
    now = func.now()
    candidate = (
        select(t.c.id)
        .where(t.c.status == "pending", or_(t.c.claimed_until.is_(None), t.c.claimed_until < now))
        .order_by(t.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            update(t)
            .where(t.c.id == candidate)
            .values(claimed_until=now + dt.timedelta(seconds=lease_seconds), attempts=t.c.attempts + 1)
            .returning(
                t.c.id,
                t.c.practice_id,
                t.c.client_id,
                t.c.kind,
                t.c.source_id,
                t.c.version,
                t.c.source,
                t.c.attempts,
            )
        )
    ).one_or_none()
    return Job(**row._mapping) if row else None


async def mark_rendered(session: AsyncSession, job_id: uuid.UUID, *, pdf: bytes, pages: int, sha256: str) -> bool:
    """Store the PDF; False if the job was already finished (by a replica whose lease ran out)."""
    done = await session.scalar(
        update(t)
        .where(t.c.id == job_id, t.c.status == "pending")
        .values(status="rendered", pdf=pdf, pages=pages, sha256=sha256, finished_at=func.now(), claimed_until=None)
        .returning(t.c.id)
    )
    return done is not None


async def mark_failed(session: AsyncSession, job_id: uuid.UUID, reason: str) -> bool:
    done = await session.scalar(
        update(t)
        .where(t.c.id == job_id, t.c.status == "pending")
        .values(status="failed", failure_reason=reason, finished_at=func.now(), claimed_until=None)
        .returning(t.c.id)
    )
    return done is not None


async def release_job(session: AsyncSession, job_id: uuid.UUID) -> None:
    """Give a claimed job back at once (the renderer crashed, not the document)."""
    await session.execute(update(t).where(t.c.id == job_id, t.c.status == "pending").values(claimed_until=None))


async def mark_shared(session: AsyncSession, practice_id: str, kind: str, source_id: str) -> None:
    stmt = insert(shared_sources).values(practice_id=practice_id, kind=kind, source_id=source_id)
    await session.execute(stmt.on_conflict_do_nothing())


def _shared() -> Any:
    """The document's source has been shared with the client."""
    s = shared_sources
    return exists().where(s.c.practice_id == t.c.practice_id, s.c.kind == t.c.kind, s.c.source_id == t.c.source_id)


async def get_document(
    session: AsyncSession, practice_id: str, document_id: uuid.UUID, *, shared_only: bool = False
) -> Row[Any] | None:
    query = select(*METADATA_COLUMNS).where(t.c.id == document_id, t.c.practice_id == practice_id)
    return (await session.execute(query.where(_shared()) if shared_only else query)).one_or_none()


async def get_pdf(
    session: AsyncSession, practice_id: str, document_id: uuid.UUID, *, shared_only: bool = False
) -> Row[Any] | None:
    query = select(*METADATA_COLUMNS, t.c.pdf).where(t.c.id == document_id, t.c.practice_id == practice_id)
    return (await session.execute(query.where(_shared()) if shared_only else query)).one_or_none()


async def list_documents(
    session: AsyncSession, practice_id: str, *, filters: dict[str, str], limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None, shared_only: bool = False,
) -> list[Row[Any]]:  # fmt: skip
    """Newest first; `filters` on client_id, source_id, kind, status; keyset pagination."""
    query = select(*METADATA_COLUMNS).where(t.c.practice_id == practice_id)
    if shared_only:
        query = query.where(_shared())
    for name, value in filters.items():
        query = query.where(t.c[name] == value)
    if after is not None:
        query = query.where(tuple_(t.c.created_at, t.c.id) < tuple_(*after))
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
    return list((await session.execute(query)).all())
