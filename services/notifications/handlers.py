"""Events in → a queued delivery (once per cause) or a projection update. Sending happens in
the background sender, never inside a consumer's transaction."""

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications import domain, projections
from services.notifications import repository as repo
from services.notifications.compose import render
from services.notifications.domain import Contact, Draft
from shared.consumer import Handler
from shared.events import (
    AutopayDisabled,
    BillEvent,
    BillShared,
    CardAuthorized,
    ClientUpserted,
    DocumentFailed,
    DocumentRendered,
    Envelope,
    GoodFaithEstimateShared,
    PaymentFailed,
    PaymentInfo,
    PaymentPlanCreated,
    PaymentPlanDefaulted,
    PaymentRecorded,
    PaymentRefunded,
    ShareDelivery,
    StatementShared,
    SuperbillShared,
)
from shared.settings import Settings


class NotificationHandlers:
    def __init__(self, settings: Settings) -> None:
        self.pdf_wait = dt.timedelta(seconds=settings.email_pdf_wait_seconds)

    def billing(self) -> dict[str, Handler]:
        return {
            "BillShared": self.bill_shared,
            "StatementShared": self.statement_shared,
            "SuperbillShared": self.superbill_shared,
            "GoodFaithEstimateShared": self.estimate_shared,
            "BillCreated": self.bill_changed,
            "BillUpdated": self.bill_changed,
            "BillPaid": self.bill_changed,
            "BillCancelled": self.bill_changed,
        }

    def documents(self) -> dict[str, Handler]:
        return {"DocumentRendered": self.document_rendered, "DocumentFailed": self.document_failed}

    def payments(self) -> dict[str, Handler]:
        return {
            "PaymentRecorded": self.payment_recorded,
            "PaymentRefunded": self.payment_refunded,
            "PaymentFailed": self.payment_failed,
            "AutopayDisabled": self.autopay_disabled,
            "PaymentPlanCreated": self.plan_created,
            "PaymentPlanDefaulted": self.plan_defaulted,
            "CardAuthorized": self.card_authorized,
        }

    def scheduling(self) -> dict[str, Handler]:
        return {"ClientUpserted": self.client_upserted}

    # ---- shares (billing.events) ------------------------------------------------------------

    async def bill_shared(self, session: AsyncSession, env: Envelope[BillShared]) -> None:
        bill = env.data.bill
        await projections.record_practice(session, env.practice_id, bill.practice)
        await projections.record_bill(session, env.practice_id, bill)
        await self._queue_share(session, env, bill.client_id, domain.bill_shared(bill, env.data.share), env.data.share)

    async def statement_shared(self, session: AsyncSession, env: Envelope[StatementShared]) -> None:
        source, share = env.data.statement, env.data.share
        await projections.record_practice(session, env.practice_id, source.practice)
        await self._queue_share(session, env, source.client_id, domain.document_shared(source, share), share)

    async def superbill_shared(self, session: AsyncSession, env: Envelope[SuperbillShared]) -> None:
        source, share = env.data.superbill, env.data.share
        await projections.record_practice(session, env.practice_id, source.practice)
        await self._queue_share(session, env, source.client_id, domain.document_shared(source, share), share)

    async def estimate_shared(self, session: AsyncSession, env: Envelope[GoodFaithEstimateShared]) -> None:
        source, share = env.data.estimate, env.data.share
        await projections.record_practice(session, env.practice_id, source.practice)
        await self._queue_share(session, env, source.client_id, domain.document_shared(source, share), share)

    async def bill_changed(self, session: AsyncSession, env: Envelope[BillEvent]) -> None:
        await projections.record_practice(session, env.practice_id, env.data.bill.practice)
        await projections.record_bill(session, env.practice_id, env.data.bill)

    async def _queue_share(
        self, session: AsyncSession, env: Envelope[Any], client_id: str, draft: Draft, share: ShareDelivery
    ) -> None:
        contact = Contact(share.recipient.name, share.recipient.email)
        channel = domain.channel_for(contact.email, email_wanted=share.email)
        if contact.email:
            await projections.record_email_preference(session, env.practice_id, client_id, share.email, env.occurred_at)
        await self._queue(session, env, client_id, draft, contact, channel)

    # ---- documents.events -----------------------------------------------------------------------

    async def document_rendered(self, session: AsyncSession, env: Envelope[DocumentRendered]) -> None:
        await projections.record_rendered(session, env.practice_id, env.data)

    async def document_failed(self, session: AsyncSession, env: Envelope[DocumentFailed]) -> None:
        d = env.data
        await repo.fail_waiting_for_document(session, env.practice_id, d.kind, d.source_id, d.version, d.reason)

    # ---- payments.events --------------------------------------------------------------------------

    async def payment_recorded(self, session: AsyncSession, env: Envelope[PaymentRecorded]) -> None:
        payment = env.data.payment
        if payment.payer != "client":
            return
        known = await projections.bill_balances_for(session, env.practice_id, [a.bill_id for a in env.data.allocations])
        bills = {b.bill_id: domain.KnownBill(b.balance_cents, frozenset(b.payment_ids)) for b in known}
        remaining = domain.remaining_after(payment.id, env.data.allocations, bills)
        practice = await projections.get_practice(session, env.practice_id)
        contact = await self._contact(session, env.practice_id, payment.client_id)
        draft = domain.payment_receipt(payment, practice.name, practice.currency, contact.name, remaining)
        await self._queue_to_client(session, env, payment, draft, contact)

    async def payment_refunded(self, session: AsyncSession, env: Envelope[PaymentRefunded]) -> None:
        payment = env.data.payment
        if payment.payer != "client":
            return
        practice = await projections.get_practice(session, env.practice_id)
        contact = await self._contact(session, env.practice_id, payment.client_id)
        draft = domain.refund_issued(env.data.refund, payment, practice.name, practice.currency, contact.name)
        await self._queue_to_client(session, env, payment, draft, contact)

    async def payment_failed(self, session: AsyncSession, env: Envelope[PaymentFailed]) -> None:
        payment = env.data.payment
        if payment.payer != "client" or payment.method != "card":
            return
        practice = await projections.get_practice(session, env.practice_id)
        contact = await self._contact(session, env.practice_id, payment.client_id)
        draft = domain.payment_failed(
            payment, env.data.reason, practice.name, practice.currency, contact.name, env.data.autopay
        )
        await self._queue_to_client(session, env, payment, draft, contact)

    async def autopay_disabled(self, session: AsyncSession, env: Envelope[AutopayDisabled]) -> None:
        client_id = env.data.client_id
        practice = await projections.get_practice(session, env.practice_id)
        contact = await self._contact(session, env.practice_id, client_id)
        draft = domain.autopay_disabled(practice.name, contact.name, env.data.failed_nights)
        await self._queue_to(session, env, client_id, draft, contact)

    async def plan_created(self, session: AsyncSession, env: Envelope[PaymentPlanCreated]) -> None:
        practice = await projections.get_practice(session, env.practice_id)
        contact = await self._contact(session, env.practice_id, env.data.plan.client_id)
        draft = domain.plan_schedule(env.data.plan, practice.name, practice.currency, contact.name)
        await self._queue_to(session, env, env.data.plan.client_id, draft, contact)

    async def plan_defaulted(self, session: AsyncSession, env: Envelope[PaymentPlanDefaulted]) -> None:
        plan = env.data.plan
        practice = await projections.get_practice(session, env.practice_id)
        contact = await self._contact(session, env.practice_id, plan.client_id)
        draft = domain.plan_defaulted(plan, practice.name, practice.currency, contact.name, env.data.failed_in_row)
        await self._queue_to(session, env, plan.client_id, draft, contact)

    async def _queue_to(
        self, session: AsyncSession, env: Envelope[Any], client_id: str, draft: Draft, contact: Contact
    ) -> None:
        wanted = await projections.email_wanted(session, env.practice_id, client_id)
        await self._queue(
            session, env, client_id, draft, contact, domain.channel_for(contact.email, email_wanted=wanted)
        )

    async def _contact(self, session: AsyncSession, practice_id: str, client_id: str) -> Contact:
        """An unknown client (no ClientUpserted yet) still gets the portal notification."""
        return await projections.get_contact(session, practice_id, client_id) or Contact("Client", None)

    async def _queue_to_client(
        self, session: AsyncSession, env: Envelope[Any], payment: PaymentInfo, draft: Draft, contact: Contact
    ) -> None:
        wanted = await projections.email_wanted(session, env.practice_id, payment.client_id)
        channel = domain.channel_for(contact.email, email_wanted=wanted)
        await self._queue(session, env, payment.client_id, draft, contact, channel)

    async def card_authorized(self, session: AsyncSession, env: Envelope[CardAuthorized]) -> None:
        await projections.upsert_card(session, env.practice_id, env.data)

    # ---- scheduling.events ----------------------------------------------------------------------

    async def client_upserted(self, session: AsyncSession, env: Envelope[ClientUpserted]) -> None:
        client = env.data.client
        await projections.upsert_contact(session, env.practice_id, client.id, domain.contact_for(client))

    async def _queue(
        self,
        session: AsyncSession,
        env: Envelope[Any],
        client_id: str,
        draft: Draft,
        contact: Contact,
        channel: domain.Channel,
    ) -> None:
        await queue_draft(
            session,
            practice_id=env.practice_id,
            client_id=client_id,
            cause=env.event_id,
            draft=draft,
            contact=contact,
            channel=channel,
            pdf_wait=self.pdf_wait,
        )


async def queue_draft(
    session: AsyncSession,
    *,
    practice_id: str,
    client_id: str,
    cause: str,
    draft: Draft,
    contact: Contact,
    channel: domain.Channel,
    pdf_wait: dt.timedelta,
) -> bool:
    """Queue one delivery for this cause; False if that cause was already queued."""
    return await repo.queue_delivery(
        session,
        delivery_id=domain.delivery_id(cause, draft.kind),
        practice_id=practice_id,
        client_id=client_id,
        cause_event_id=cause,
        draft=draft,
        contact=contact,
        channel=channel,
        bodies=render(draft),
        pdf_wait=pdf_wait,
    )
