"""Statements and superbills are issued the same way: a numbered row that keeps the
`DocumentSource` documents renders, got by id, shared now or at a scheduled time (the
scheduler shares it when due). Only the table, the events and the extra row fields differ,
so one `IssuedKind` per table serves both."""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing import repository as repo
from services.billing.bills import share_delivery, stage
from shared.events import DocumentSource, Model, ShareDelivery
from shared.outbox import Outbox


@dataclass(frozen=True)
class IssuedKind:
    name: str
    """"statement" or "superbill": in not-found messages and client access checks."""
    table: Table
    created: Callable[[DocumentSource], Model]
    shared: Callable[[DocumentSource, ShareDelivery], Model]
    row_fields: tuple[str, ...]
    """Row columns shown in the view (after `issued_on`) instead of the body keys of that name."""

    async def issue(
        self, db: AsyncSession, outbox: Outbox, practice_id: str, source: DocumentSource, *,
        now: dt.datetime, auto_share_in: dt.timedelta | None, **values: Any,
    ) -> Row[Any]:  # fmt: skip
        """Insert the row for `source` (its share scheduled `auto_share_in` from now when the
        practice shares automatically) and stage its created event."""
        await db.execute(
            self.table.insert().values(
                id=uuid.UUID(source.id), practice_id=practice_id, number=source.number, client_id=source.client_id,
                issued_on=source.issued_on, **values, source=source.model_dump(mode="json"), created_at=now,
                share_scheduled_at=now + auto_share_in if auto_share_in is not None else None,
            )
        )  # fmt: skip
        await stage(outbox, db, practice_id, source.client_id, self.created(source))
        return await self.get(db, practice_id, source.id)

    async def get(self, db: AsyncSession, practice_id: str, doc_id: str, *, lock: bool = False) -> Row[Any]:
        t = self.table
        sid = repo.parse_id(doc_id)
        query = select(t).where(t.c.id == sid, t.c.practice_id == practice_id)
        row = (await db.execute(query.with_for_update() if lock else query)).first() if sid else None
        if row is None:
            raise domain.RuleViolation("not_found", f"{self.name} not found", status=404)
        return row

    async def share(
        self, db: AsyncSession, outbox: Outbox, row: Row[Any], *, now: dt.datetime,
        scheduled_for: dt.datetime | None = None,
    ) -> Row[Any]:  # fmt: skip
        """Share now (stage the shared event) or at `scheduled_for` (the scheduler shares it then)."""
        if scheduled_for is not None and scheduled_for > now:
            values: dict[str, Any] = {"share_scheduled_at": scheduled_for}
        else:
            source = DocumentSource.model_validate(row.source)
            delivery = await share_delivery(db, row.practice_id, row.client_id, source.bill_to)
            await stage(outbox, db, row.practice_id, row.client_id, self.shared(source, delivery))
            values = {"shared": True, "shared_at": now, "share_scheduled_at": None}
        stmt = update(self.table).where(self.table.c.id == row.id).values(**values).returning(*self.table.c)
        return (await db.execute(stmt)).one()

    async def due_for_share(
        self, db: AsyncSession, now: dt.datetime, *, practice_id: str | None = None, limit: int = 100
    ) -> list[Row[Any]]:
        return await repo.due_for_share(db, self.table, now, practice_id=practice_id, limit=limit)

    def view(self, row: Row[Any]) -> dict[str, Any]:
        """The HTTP representation: the row's own fields, the body, share and document state."""
        source = row.source
        return {
            "id": str(row.id),
            "number": row.number,
            "client_id": row.client_id,
            "status": "issued",
            "issued_on": row.issued_on,
            **{name: getattr(row, name) for name in self.row_fields},
            "bill_to": source["bill_to"],
            "patient": source["patient"],
            **{k: v for k, v in source["body"].items() if k not in self.row_fields},
            "document_id": row.document_id,
            "shared": row.shared,
            "shared_at": row.shared_at,
            "share_scheduled_at": row.share_scheduled_at,
            "created_at": row.created_at,
        }
