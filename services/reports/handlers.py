"""Events in → projections and journal entries, in the consumer's transaction (with the inbox).

Topics are consumed independently, so nothing here assumes one topic's event arrived before
another's: a bill's journal entry needs only the bill, a payment's only the payment; names,
sessions and practice settings are joined when a report is asked for."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, String, bindparam, delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports import domain
from services.reports.db import (
    audit_log,
    bill_lines,
    bill_payments,
    bills,
    journal_entries,
    journal_lines,
    money_facts,
    names,
    practices,
    sessions,
)
from shared.consumer import BatchHandler, Handler
from shared.events import (
    AllocationRejected,
    AuditRecorded,
    BillEvent,
    ClientUpserted,
    ClinicianUpserted,
    CreditChanged,
    Envelope,
    PaymentRecorded,
    PaymentRefunded,
    PracticeAutomationChanged,
    SessionCompleted,
)

ENTRY_NAMESPACE = uuid.UUID("5f0c7d1e-9a57-4c52-8d61-3b1f4a2e6c90")


def entry_id(event_id: str) -> str:
    """Deterministic: a rebuild gives every entry the id it had."""
    return str(uuid.uuid5(ENTRY_NAMESPACE, event_id))


async def book(
    session: AsyncSession,
    env: Envelope[Any],
    client_id: str,
    je: domain.JournalEntry | None,
    at: Any,
    on_date: Any = None,
) -> None:
    if je is None:
        return
    eid = entry_id(env.event_id)
    await session.execute(
        insert(journal_entries).values(
            entry_id=eid,
            practice_id=env.practice_id,
            client_id=client_id,
            at=at,
            on_date=on_date,
            source_kind=je.source_kind,
            source_id=je.source_id,
            memo=je.memo,
        )
    )
    await session.execute(
        insert(journal_lines),
        [
            {
                "entry_id": eid,
                "line_no": i,
                "practice_id": env.practice_id,
                "client_id": client_id,
                "account": line.account,
                "debit_cents": line.debit_cents,
                "credit_cents": line.credit_cents,
            }
            for i, line in enumerate(je.lines)
        ],
    )


async def bill_changed(session: AsyncSession, env: Envelope[BillEvent]) -> None:
    """Any bill event carries the whole bill: keep the newest version, book the difference."""
    snap = env.data.bill
    key = (bills.c.practice_id == env.practice_id, bills.c.bill_id == snap.id)
    row = (await session.execute(select(bills).where(*key).with_for_update())).one_or_none()
    if row is not None and row.version >= snap.version:
        return
    booked: domain.Booked = dict(row.booked) if row else {}
    insurance_share = sum(line.insurance_owes_cents for line in snap.lines)
    cancelled = snap.status == "cancelled"
    standing = [(a.payer, a.kind, a.amount_cents) for a in snap.adjustments if a.reversed_at is None]
    target = domain.bill_target(snap.status, snap.total_cents, insurance_share, standing)
    je = domain.bill_entry(snap.id, snap.number, booked, target, cancelled=cancelled)
    await book(session, env, snap.client_id, je, env.occurred_at, None if row else snap.issued_on)
    values = {
        "client_id": snap.client_id,
        "number": snap.number,
        "version": snap.version,
        "status": snap.status,
        "responsibility": snap.responsibility,
        "issued_on": snap.issued_on,
        "due_date": snap.due_date,
        "cancelled_at": (row.cancelled_at if row and row.cancelled_at else env.occurred_at) if cancelled else None,
        "total_cents": snap.total_cents,
        "insurance_share_cents": insurance_share,
        "paid_cents": snap.paid_cents,
        "balance_cents": snap.balance_cents,
        "booked": target,
    }
    stmt = pg_insert(bills).values(practice_id=env.practice_id, bill_id=snap.id, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[bills.c.practice_id, bills.c.bill_id], set_=values)
    )
    if row is not None:  # a new version replaces the lines and payments of the one before
        await session.execute(
            delete(bill_lines).where(bill_lines.c.practice_id == env.practice_id, bill_lines.c.bill_id == snap.id)
        )
        await session.execute(
            delete(bill_payments).where(
                bill_payments.c.practice_id == env.practice_id, bill_payments.c.bill_id == snap.id
            )
        )
    figures = domain.line_figures(
        [line.amount_cents for line in snap.lines], paid_cents=snap.paid_cents, balance_cents=snap.balance_cents
    )
    if snap.lines and not cancelled:  # a cancelled bill counts for nothing in revenue
        await session.execute(
            insert(bill_lines),
            [
                {
                    "practice_id": env.practice_id,
                    "bill_id": snap.id,
                    "line_no": i,
                    "session_id": line.session_id,
                    "code": line.code,
                    "issued_on": snap.issued_on,
                    "billed_cents": f.billed_cents,
                    "collected_cents": f.collected_cents,
                    "adjusted_cents": f.adjusted_cents,
                    "outstanding_cents": f.outstanding_cents,
                }
                for i, (line, f) in enumerate(zip(snap.lines, figures, strict=True))
            ],
        )
    # What lowered or raised the balance and when: payments, refunds, adjustments and their reversals.
    moves = [(p.kind, p.payer, p.amount_cents, p.occurred_at) for p in snap.payments]
    for a in snap.adjustments:
        moves.append(("adjustment", a.payer, a.amount_cents, a.created_at))
        if a.reversed_at is not None:
            moves.append(("adjustment_reversed", a.payer, a.amount_cents, a.reversed_at))
    if moves:
        await session.execute(
            insert(bill_payments),
            [
                {
                    "practice_id": env.practice_id,
                    "bill_id": snap.id,
                    "seq": i,
                    "kind": kind,
                    "payer": payer,
                    "amount_cents": cents,
                    "occurred_at": when,
                }
                for i, (kind, payer, cents, when) in enumerate(moves)
            ],
        )
    if row is None:  # a bill carries the practice's settings as of its creation; PracticeAutomationChanged wins
        await session.execute(
            pg_insert(practices)
            .values(practice_id=env.practice_id, timezone=snap.practice.timezone, currency=snap.practice.currency)
            .on_conflict_do_nothing()
        )


async def practice_changed(session: AsyncSession, env: Envelope[PracticeAutomationChanged]) -> None:
    values = {"timezone": env.data.timezone, "currency": env.data.currency}
    stmt = pg_insert(practices).values(practice_id=env.practice_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[practices.c.practice_id], set_=values))


async def _facts(
    session: AsyncSession,
    env: Envelope[Any],
    *,
    fact_id: str,
    kind: str,
    payment: Any,
    parts: Sequence[tuple[str | None, int]],
    at: Any,
) -> None:
    rows = [
        {
            "practice_id": env.practice_id,
            "fact_id": fact_id,
            "kind": kind,
            "payment_id": payment.id,
            "client_id": payment.client_id,
            "payer": payment.payer,
            "method": payment.method,
            "bill_id": bill_id,
            "amount_cents": cents,
            "at": at,
        }
        for bill_id, cents in parts
        if cents
    ]
    if rows:
        await session.execute(insert(money_facts), rows)


async def payment_recorded(session: AsyncSession, env: Envelope[PaymentRecorded]) -> None:
    data, p = env.data, env.data.payment
    allocated = sum(a.amount_cents for a in data.allocations)
    je = domain.payment_entry(p.id, p.method, p.payer, p.amount_cents, allocated, data.credit_cents)
    parts = [(a.bill_id, a.amount_cents) for a in data.allocations] + [(None, data.credit_cents)]
    await _facts(session, env, fact_id=p.id, kind="payment", payment=p, parts=parts, at=p.paid_at)
    await book(session, env, p.client_id, je, p.paid_at)


async def payment_refunded(session: AsyncSession, env: Envelope[PaymentRefunded]) -> None:
    data, p, r = env.data, env.data.payment, env.data.refund
    allocated = sum(a.amount_cents for a in data.allocations)
    je = domain.refund_entry(r.id, p.method, p.payer, r.amount_cents, allocated, data.credit_cents)
    parts = [(a.bill_id, a.amount_cents) for a in data.allocations]
    parts.append((None, r.amount_cents - allocated))
    await _facts(session, env, fact_id=r.id, kind="refund", payment=p, parts=parts, at=r.refunded_at)
    await book(session, env, p.client_id, je, r.refunded_at)


async def allocation_rejected(session: AsyncSession, env: Envelope[AllocationRejected]) -> None:
    data = env.data
    payer = (
        await session.execute(
            select(money_facts.c.payer)
            .where(money_facts.c.practice_id == env.practice_id, money_facts.c.payment_id == data.payment_id)
            .limit(1)
        )
    ).scalar_one_or_none()
    je = domain.rejected_entry(data.payment_id, data.bill_id, payer or "client", data.amount_cents)
    await book(session, env, data.client_id, je, env.occurred_at)


async def credit_changed(session: AsyncSession, env: Envelope[CreditChanged]) -> None:
    data = env.data
    if data.kind in domain.CREDIT_ADJUSTMENT_KINDS:
        je = domain.credit_adjustment_entry(data.entry_id, data.kind, data.amount_cents)
        await book(session, env, data.client_id, je, env.occurred_at)


async def _name(session: AsyncSession, practice_id: str, kind: str, id_: str, name: str) -> None:
    stmt = pg_insert(names).values(practice_id=practice_id, kind=kind, id=id_, name=name)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[names.c.practice_id, names.c.kind, names.c.id], set_={"name": name})
    )


async def client_upserted(session: AsyncSession, env: Envelope[ClientUpserted]) -> None:
    c = env.data.client
    await _name(session, env.practice_id, "client", c.id, f"{c.first_name} {c.last_name}")


async def clinician_upserted(session: AsyncSession, env: Envelope[ClinicianUpserted]) -> None:
    c = env.data.clinician
    await _name(session, env.practice_id, "clinician", c.id, f"{c.first_name} {c.last_name}, {c.credentials}")


_SESSIONS_UPSERT = text(
    f"INSERT INTO {sessions.fullname} (practice_id, session_id, clinician_id) "
    "SELECT * FROM unnest(CAST(:p AS text[]), CAST(:s AS text[]), CAST(:c AS text[])) "
    "ON CONFLICT (practice_id, session_id) DO UPDATE SET clinician_id = EXCLUDED.clinician_id"
).bindparams(*(bindparam(n, type_=ARRAY(String)) for n in ("p", "s", "c")))


async def sessions_completed(session: AsyncSession, envs: Sequence[Envelope[SessionCompleted]]) -> None:
    """Which clinician saw each session (revenue and payments by clinician): one statement per run."""
    latest = {(e.practice_id, e.data.session.id): e.data.session.clinician_id for e in envs}
    await session.execute(
        _SESSIONS_UPSERT,
        {"p": [k[0] for k in latest], "s": [k[1] for k in latest], "c": list(latest.values())},
    )


async def audit_recorded(session: AsyncSession, envs: Sequence[Envelope[AuditRecorded]]) -> None:
    """Append to the audit log (a redelivered event is already there: nothing changes)."""
    rows = [
        {
            "id": e.event_id,
            "practice_id": e.practice_id,
            "at": e.occurred_at,
            "actor": e.data.actor,
            "role": e.data.role,
            "service": e.data.service,
            "action": e.data.action,
            "resource_kind": e.data.resource.kind,
            "resource_id": e.data.resource.id,
            "client_id": e.data.client_id,
            "ip": e.data.ip,
        }
        for e in envs
    ]
    await session.execute(pg_insert(audit_log).values(rows).on_conflict_do_nothing())


AUDIT: dict[str, BatchHandler] = {"AuditRecorded": audit_recorded}  # type: ignore[dict-item]

BILL_EVENTS = ("BillCreated", "BillUpdated", "BillPaid", "BillCancelled", "BillShared")


def billing() -> dict[str, Handler]:
    return {
        **dict.fromkeys(BILL_EVENTS, bill_changed),
        "AllocationRejected": allocation_rejected,
        "PracticeAutomationChanged": practice_changed,
    }  # type: ignore[dict-item]


def payments() -> dict[str, Handler]:
    return {
        "PaymentRecorded": payment_recorded,
        "PaymentRefunded": payment_refunded,
        "CreditChanged": credit_changed,
    }  # type: ignore[dict-item]


def scheduling() -> tuple[dict[str, Handler], dict[str, BatchHandler]]:
    return (
        {"ClientUpserted": client_upserted, "ClinicianUpserted": clinician_upserted},  # type: ignore[dict-item]
        {"SessionCompleted": sessions_completed},  # type: ignore[dict-item]
    )
