"""billing.events → a pending document version (the render job). Rendering happens in the
worker, outside this transaction, so a consumer batch commits in milliseconds."""

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.documents import repository
from services.documents.domain import Kind, should_render
from shared.events import BillEvent, DocumentSource, Envelope, StatementCreated, SuperbillCreated

log = logging.getLogger(__name__)


async def record_version(
    session: AsyncSession, practice_id: str, kind: Kind, source_id: str, client_id: str, version: int,
    source: dict[str, Any],
) -> None:  # fmt: skip
    """A new version renders; the same or an older one (redelivery, replay) renders nothing."""
    latest = await repository.latest_version(session, practice_id, kind, source_id)
    if not should_render(latest, version):
        log.info("%s %s v%d already at v%s; nothing to render", kind, source_id, version, latest)
        return
    await repository.add_version(
        session, practice_id=practice_id, client_id=client_id, kind=kind, source_id=source_id, version=version,
        source=source,
    )  # fmt: skip


async def on_bill(session: AsyncSession, env: Envelope[BillEvent]) -> None:
    """BillCreated, BillUpdated, BillPaid, BillCancelled, BillShared: all carry the snapshot."""
    bill = env.data.bill
    await record_version(
        session, env.practice_id, "bill", bill.id, bill.client_id, bill.version, bill.model_dump(mode="json")
    )


async def _on_source(session: AsyncSession, practice_id: str, source: DocumentSource) -> None:
    await record_version(
        session, practice_id, source.kind, source.id, source.client_id, source.version, source.model_dump(mode="json")
    )


async def on_statement(session: AsyncSession, env: Envelope[StatementCreated]) -> None:
    """StatementCreated (and StatementShared: same snapshot, renders only if newer)."""
    await _on_source(session, env.practice_id, env.data.statement)


async def on_superbill(session: AsyncSession, env: Envelope[SuperbillCreated]) -> None:
    await _on_source(session, env.practice_id, env.data.superbill)


HANDLERS = {
    "BillCreated": on_bill,
    "BillUpdated": on_bill,
    "BillPaid": on_bill,
    "BillCancelled": on_bill,
    "BillShared": on_bill,
    "StatementCreated": on_statement,
    "StatementShared": on_statement,
    "SuperbillCreated": on_superbill,
    "SuperbillShared": on_superbill,
}
