"""Projections of other services' facts that emails need: rendered PDFs, client contacts,
bill balances, practice names, cards on file. Each keeps the newest version it has seen."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.db import (
    EMAIL_SIGNAL,
    bill_balances,
    cards,
    client_contacts,
    email_preferences,
    practices,
    rendered_documents,
)
from services.notifications.domain import Contact
from shared.db import Database
from shared.events import BillSnapshot, CardAuthorized, DocumentRendered, PracticeInfo
from shared.tenancy import refuse_foreign


async def record_rendered(session: AsyncSession, practice_id: str, doc: DocumentRendered) -> None:
    """Keep the newest rendered version of each source (events may arrive out of order)."""
    stmt = insert(rendered_documents).values(
        kind=doc.kind,
        source_id=doc.source_id,
        practice_id=practice_id,
        document_id=doc.document_id,
        version=doc.version,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                rendered_documents.c.practice_id,
                rendered_documents.c.kind,
                rendered_documents.c.source_id,
            ],
            set_={
                "document_id": stmt.excluded.document_id,
                "version": stmt.excluded.version,
                "updated_at": func.now(),
            },
            where=rendered_documents.c.version <= stmt.excluded.version,
        )
    )
    Database.signal(session, EMAIL_SIGNAL)  # a share waiting for this PDF can go now


async def upsert_contact(session: AsyncSession, practice_id: str, client_id: str, contact: Contact) -> None:
    stmt = insert(client_contacts).values(
        practice_id=practice_id, client_id=client_id, recipient_name=contact.name, email=contact.email
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[client_contacts.c.practice_id, client_contacts.c.client_id],
            set_={"recipient_name": contact.name, "email": contact.email, "updated_at": func.now()},
        )
    )


async def get_contact(session: AsyncSession, practice_id: str, client_id: str) -> Contact | None:
    row = (
        await session.execute(
            select(client_contacts.c.recipient_name, client_contacts.c.email).where(
                client_contacts.c.practice_id == practice_id, client_contacts.c.client_id == client_id
            )
        )
    ).first()
    return Contact(row.recipient_name, row.email) if row else None


async def record_bill(session: AsyncSession, practice_id: str, bill: BillSnapshot) -> None:
    """The newest snapshot of each bill: its balance and which payments it already reflects."""
    values = {
        "practice_id": practice_id,
        "number": bill.number,
        "version": bill.version,
        "balance_cents": bill.balance_cents,
        "currency": bill.practice.currency,
        "payment_ids": sorted({p.payment_id for p in bill.payments}),
    }
    await refuse_foreign(session, bill_balances.c.bill_id, bill_balances.c.practice_id, practice_id, [bill.id], "bill")
    stmt = insert(bill_balances).values(bill_id=bill.id, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[bill_balances.c.practice_id, bill_balances.c.bill_id],
            set_=values,
            where=bill_balances.c.version <= stmt.excluded.version,
        )
    )


@dataclass(frozen=True)
class BillBalance:
    bill_id: str
    balance_cents: int
    currency: str
    payment_ids: list[str]


async def bill_balances_for(session: AsyncSession, practice_id: str, bill_ids: list[str]) -> list[BillBalance]:
    rows = (
        await session.execute(
            select(bill_balances).where(
                bill_balances.c.practice_id == practice_id, bill_balances.c.bill_id.in_(bill_ids)
            )
        )
    ).all()
    return [BillBalance(r.bill_id, r.balance_cents, r.currency, list(r.payment_ids)) for r in rows]


async def record_practice(session: AsyncSession, practice_id: str, info: PracticeInfo) -> None:
    """Name and currency for emails caused by payments (their events do not carry them)."""
    if not info.name:
        return
    stmt = insert(practices).values(practice_id=practice_id, name=info.name, currency=info.currency)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[practices.c.practice_id],
            set_={"name": info.name, "currency": info.currency, "updated_at": func.now()},
        )
    )


async def get_practice(session: AsyncSession, practice_id: str) -> PracticeInfo:
    row = (
        await session.execute(
            select(practices.c.name, practices.c.currency).where(practices.c.practice_id == practice_id)
        )
    ).first()
    return PracticeInfo(name=row.name, currency=row.currency) if row else PracticeInfo()


async def upsert_card(session: AsyncSession, practice_id: str, card: CardAuthorized) -> None:
    """Cards on file with an expiry date (the only ones that can expire)."""
    if card.exp_month is None or card.exp_year is None:
        return
    values = {
        "client_id": card.client_id,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }
    stmt = insert(cards).values(practice_id=practice_id, card_id=card.card_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[cards.c.practice_id, cards.c.card_id], set_={**values, "updated_at": func.now()}
        )
    )


async def cards_expiring_between(session: AsyncSession, first: dt.date, last: dt.date) -> list[Any]:
    """Cards whose expiry month lies between these dates' months (the domain decides exactly)."""
    month_index = cards.c.exp_year * 12 + cards.c.exp_month
    rows = await session.execute(
        select(cards).where(month_index >= first.year * 12 + first.month, month_index <= last.year * 12 + last.month)
    )
    return list(rows.all())


async def record_email_preference(
    session: AsyncSession, practice_id: str, client_id: str, wanted: bool, as_of: dt.datetime
) -> None:
    """What billing's latest share said about email vs portal only for a client with an
    address (billing's profile is not published otherwise); receipts follow it too."""
    stmt = insert(email_preferences).values(
        practice_id=practice_id, client_id=client_id, email_wanted=wanted, as_of=as_of
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[email_preferences.c.practice_id, email_preferences.c.client_id],
            set_={"email_wanted": wanted, "as_of": as_of},
            where=email_preferences.c.as_of <= stmt.excluded.as_of,
        )
    )


async def email_wanted(session: AsyncSession, practice_id: str, client_id: str) -> bool:
    """Email unless the client's latest share was portal only."""
    wanted = await session.scalar(
        select(email_preferences.c.email_wanted).where(
            email_preferences.c.practice_id == practice_id, email_preferences.c.client_id == client_id
        )
    )
    return wanted is not False
