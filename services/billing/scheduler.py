"""Scheduled shares: bills, statements and superbills whose `share_scheduled_at` has come are shared by
whichever replica gets to them first (rows locked with SKIP LOCKED, so each is shared once), each
recorded in the audit log as automation's doing."""

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import bills, estimates, statements, superbills
from services.billing import repository as repo
from services.billing.db import bills as bills_table
from shared import audit
from shared.db import Database
from shared.outbox import Outbox
from shared.polling import every

log = logging.getLogger(__name__)


async def share_due_in(
    session: AsyncSession, outbox: Outbox, now: dt.datetime, *, practice_id: str | None = None
) -> int:
    """Share every bill, statement and superbill scheduled at or before `now`; returns how many."""
    due = await repo.due_for_share(session, bills_table, now, practice_id=practice_id)
    for bill in due:
        if bill.status == "cancelled":
            await repo.update_bill(session, bill.id, share_scheduled_at=None)
            continue
        await bills.share_bill(session, outbox, bill, now=now)
        await audit.automation(session, outbox, "billing", bill.practice_id, "share_bill", "bill", str(bill.id),
                               bill.client_id)  # fmt: skip
    shared = len(due)
    for kind in (statements.STATEMENTS, superbills.SUPERBILLS, estimates.ESTIMATES):
        for row in await kind.due_for_share(session, now, practice_id=practice_id):
            await kind.share(session, outbox, row, now=now)
            await audit.automation(session, outbox, "billing", row.practice_id, f"share_{kind.name}", kind.name,
                                   str(row.id), row.client_id)  # fmt: skip
            shared += 1
    return shared


def share_loop(db: Database, outbox: Outbox, interval_seconds: float) -> Callable[[], Awaitable[None]]:
    async def share_due() -> None:
        async with db.transaction() as session:
            await share_due_in(session, outbox, dt.datetime.now(dt.UTC))

    async def run() -> None:
        await every(interval_seconds, share_due, log=log, failure="scheduled share failed; retrying")

    return run
