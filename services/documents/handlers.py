"""billing.events → a pending document version (the render job). Rendering happens in the
worker, outside this transaction, so a consumer batch commits in milliseconds."""

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.documents import repository
from services.documents.db import RENDER_SIGNAL
from services.documents.domain import Kind, should_render
from shared.consumer import Handler
from shared.db import Database
from shared.events import (
    BillEvent,
    DocumentSource,
    Envelope,
    GoodFaithEstimateCreated,
    SharesRecorded,
    StatementCreated,
    SuperbillCreated,
)

log = logging.getLogger(__name__)


class BillingEvents:
    """Handlers for billing.events. A transaction that records a new version raises
    RENDER_SIGNAL, so its commit wakes the render worker."""

    @property
    def handlers(self) -> dict[str, Handler]:
        return {
            "BillCreated": self.on_bill,
            "BillUpdated": self.on_bill,
            "BillPaid": self.on_bill,
            "BillCancelled": self.on_bill,
            "BillShared": self.on_bill_shared,
            "StatementCreated": self.on_statement,
            "StatementShared": self.on_statement_shared,
            "SuperbillCreated": self.on_superbill,
            "SuperbillShared": self.on_superbill_shared,
            "GoodFaithEstimateCreated": self.on_estimate,
            "GoodFaithEstimateShared": self.on_estimate_shared,
            "SharesRecorded": self.on_shares_recorded,
        }

    async def record_version(
        self, session: AsyncSession, practice_id: str, kind: Kind, source_id: str, client_id: str, version: int,
        source: dict[str, Any],
    ) -> None:  # fmt: skip
        """A new version renders; the same or an older one (redelivery, replay) renders nothing."""
        latest = await repository.latest_version(session, practice_id, kind, source_id)
        if not should_render(latest, version):
            log.info("%s %s v%d already at v%s; nothing to render", kind, source_id, version, latest)
            return
        added = await repository.add_version(
            session, practice_id=practice_id, client_id=client_id, kind=kind, source_id=source_id, version=version,
            source=source,
        )  # fmt: skip
        if added:
            Database.signal(session, RENDER_SIGNAL)

    async def on_bill(self, session: AsyncSession, env: Envelope[BillEvent]) -> None:
        """BillCreated, BillUpdated, BillPaid, BillCancelled, BillShared: all carry the snapshot."""
        bill = env.data.bill
        await self.record_version(
            session, env.practice_id, "bill", bill.id, bill.client_id, bill.version, bill.model_dump(mode="json")
        )

    async def _on_source(self, session: AsyncSession, practice_id: str, source: DocumentSource) -> None:
        await self.record_version(
            session, practice_id, source.kind, source.id, source.client_id, source.version,
            source.model_dump(mode="json"),
        )  # fmt: skip

    async def on_statement(self, session: AsyncSession, env: Envelope[StatementCreated]) -> None:
        """StatementCreated (and StatementShared: same snapshot, renders only if newer)."""
        await self._on_source(session, env.practice_id, env.data.statement)

    async def on_superbill(self, session: AsyncSession, env: Envelope[SuperbillCreated]) -> None:
        await self._on_source(session, env.practice_id, env.data.superbill)

    async def on_estimate(self, session: AsyncSession, env: Envelope[GoodFaithEstimateCreated]) -> None:
        await self._on_source(session, env.practice_id, env.data.estimate)

    async def on_bill_shared(self, session: AsyncSession, env: Envelope[BillEvent]) -> None:
        """Renders like any bill event, and from now on the client may see the bill's documents."""
        await self.on_bill(session, env)
        await repository.mark_shared(session, env.practice_id, "bill", env.data.bill.id)

    async def on_statement_shared(self, session: AsyncSession, env: Envelope[StatementCreated]) -> None:
        await self.on_statement(session, env)
        await repository.mark_shared(session, env.practice_id, "statement", env.data.statement.id)

    async def on_superbill_shared(self, session: AsyncSession, env: Envelope[SuperbillCreated]) -> None:
        await self.on_superbill(session, env)
        await repository.mark_shared(session, env.practice_id, "superbill", env.data.superbill.id)

    async def on_shares_recorded(self, session: AsyncSession, env: Envelope[SharesRecorded]) -> None:
        """Shares made before documents kept its list (billing's one-off backfill): visible from now on."""
        for source in env.data.sources:
            await repository.mark_shared(session, env.practice_id, source.kind, source.id)

    async def on_estimate_shared(self, session: AsyncSession, env: Envelope[GoodFaithEstimateCreated]) -> None:
        await self.on_estimate(session, env)
        await repository.mark_shared(session, env.practice_id, "good_faith_estimate", env.data.estimate.id)
