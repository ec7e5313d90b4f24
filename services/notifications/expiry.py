"""Card-expiring notices: a periodic scan of the cards on file. Each card and expiry date is
one cause, so N replicas or a scan run twice queue each notice once (unique cause)."""

import datetime as dt
import logging

from services.notifications import domain, projections
from services.notifications.domain import Contact
from services.notifications.handlers import queue_draft
from shared.polling import every
from shared.runtime import Service

log = logging.getLogger(__name__)


class CardExpiryNotices:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.settings = svc.settings

    async def run(self) -> None:
        await every(
            self.settings.card_expiry_scan_seconds, self._scan, log=log,
            failure="card expiry scan failed; next scan as scheduled",
        )  # fmt: skip

    async def _scan(self) -> None:
        queued = await self.run_once(dt.datetime.now(dt.UTC).date())
        if queued:
            log.info("queued %d card-expiring notices", queued)

    async def run_once(self, today: dt.date) -> int:
        """Queue a notice for each card expiring within the notice period; returns how many."""
        notice = self.settings.card_expiry_notice_days
        queued = 0
        async with self.svc.db.transaction() as session:
            for card in await projections.cards_expiring_between(session, today, today + dt.timedelta(days=notice)):
                if not domain.card_expiring_soon(card.exp_year, card.exp_month, today, notice):
                    continue
                contact = await projections.get_contact(session, card.practice_id, card.client_id) or Contact(
                    "Client", None
                )
                practice = await projections.get_practice(session, card.practice_id)
                draft = domain.card_expiring(
                    card.brand, card.last4, card.exp_year, card.exp_month, practice.name, contact.name
                )
                queued += await queue_draft(
                    session,
                    practice_id=card.practice_id,
                    client_id=card.client_id,
                    cause=domain.card_expiring_cause(card.card_id, card.exp_year, card.exp_month),
                    draft=draft,
                    contact=contact,
                    channel=domain.channel_for(
                        contact.email,
                        email_wanted=await projections.email_wanted(session, card.practice_id, card.client_id),
                    ),
                    pdf_wait=dt.timedelta(0),
                )
        return queued
