"""Bill use-cases: create, share, cancel, and apply the payment facts that move a bill between
`open` and `paid`. Each runs inside the caller's transaction and stages its events in the
outbox of that same transaction."""

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing import repository as repo
from shared import topics
from shared.auth import Principal, client_facing
from shared.events import (
    AllocationRejected,
    BillAdjusted,
    BillAdjustment,
    BillAdjustmentReversed,
    BillCancelled,
    BillCreated,
    BillLine,
    BillPaid,
    BillPaymentLine,
    BillShared,
    BillSnapshot,
    BillUpdated,
    Model,
    Party,
    PracticeInfo,
    SessionService,
    ShareDelivery,
    new_envelope,
)
from shared.links import pay_link
from shared.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BillRequest:
    client_id: str
    session_ids: list[str]
    responsibility: domain.Responsibility | None = None
    edits: Sequence[domain.LineEdit] = ()
    copay_cents: int | None = None
    coinsurance_percent: Decimal | None = None
    comments: str | None = None
    due_date: dt.date | None = None
    split: Sequence[domain.SplitPart] | None = None  # None: the profile's default; []: not split


async def snapshot(db: AsyncSession, bill: Row[Any]) -> BillSnapshot:
    return (await snapshots(db, [bill]))[0]


async def snapshots(db: AsyncSession, rows: Sequence[Row[Any]]) -> list[BillSnapshot]:
    """The snapshots of any number of bills in two queries (their lines, their facts)."""
    if not rows:
        return []
    ids = [bill.id for bill in rows]
    lines, facts = await repo.lines_of_bills(db, ids), await repo.facts_of_bills(db, ids)
    adjustments = await repo.adjustments_of_bills(db, ids)
    return [
        _snapshot(bill, lines.get(bill.id, []), facts.get(bill.id, []), adjustments.get(bill.id, [])) for bill in rows
    ]


def _snapshot(
    bill: Row[Any], lines: Sequence[domain.Line], facts: Sequence[Row[Any]], adjustments: Sequence[Row[Any]]
) -> BillSnapshot:
    standing = domain.standing(
        bill.total_cents, bill.client_share_cents, repo.as_facts(facts), repo.standing_adjustments(adjustments)
    )
    return BillSnapshot(
        id=str(bill.id),
        number=bill.number,
        client_id=bill.client_id,
        status=bill.status,
        responsibility=bill.responsibility,
        lines=[
            BillLine(
                session_id=line.session_id,
                date_of_service=line.date_of_service,
                code=line.code,
                description=line.description,
                modifiers=list(line.modifiers),
                units=line.units,
                amount_cents=line.amount_cents,
                client_owes_cents=line.client_owes_cents,
                insurance_owes_cents=line.insurance_owes_cents,
                voided=line.voided,
            )
            for line in lines
        ],
        total_cents=bill.total_cents,
        client_owes_cents=standing.client_owes_cents,
        insurance_owes_cents=standing.insurance_owes_cents,
        paid_cents=standing.paid_cents,
        balance_cents=standing.balance_cents,
        issued_on=bill.issued_on,
        due_date=bill.due_date,
        comments=bill.comments,
        access_code=bill.access_code,
        pay_url=bill.pay_url,
        bill_to=Party.model_validate(bill.bill_to),
        patient=Party.model_validate(bill.patient),
        practice=PracticeInfo.model_validate(bill.practice),
        payments=[
            BillPaymentLine(
                payment_id=f.payment_id,
                kind=f.kind,
                payer=f.payer,
                method=f.method,
                amount_cents=f.amount_cents,
                occurred_at=f.occurred_at,
            )
            for f in facts
        ],
        adjusted_cents=standing.adjusted_cents,
        adjustments=[adjustment_view(a) for a in adjustments],
        split_group_id=str(bill.split_group_id) if bill.split_group_id else None,
        split_percent=bill.split_percent,
        party=bill.party,
        version=bill.version,
    )


def adjustment_view(row: Row[Any]) -> BillAdjustment:
    return BillAdjustment(
        id=str(row.id), payer=row.payer, amount_cents=row.amount_cents, kind=row.kind, reason=row.reason,
        created_at=row.created_at, reversed_at=row.reversed_at,
    )  # fmt: skip


def view(bill: Row[Any], snap: BillSnapshot) -> dict[str, Any]:
    """The HTTP representation: the snapshot plus share and document state."""
    return snap.model_dump(mode="json") | {
        "shared": bill.shared,
        "shared_at": bill.shared_at,
        "share_scheduled_at": bill.share_scheduled_at,
        "document_id": bill.document_id,
        "created_at": bill.created_at,
        "cancelled_at": bill.cancelled_at,
        "cancel_reason": bill.cancel_reason,
    }


STAFF_ONLY = ("cancel_reason", "share_scheduled_at")
"""Bill fields a client does not see (staff's reasons and plans)."""


def client_view(principal: Principal, bill: Row[Any], snap: BillSnapshot) -> dict[str, Any]:
    """`view` as the caller may see it: whole for staff, client-facing fields for a client."""
    return client_facing(principal, view(bill, snap), STAFF_ONLY)


async def stage(outbox: Outbox, db: AsyncSession, practice_id: str, client_id: str, *events: Model) -> None:
    await outbox.stage(db, topics.BILLING, [(client_id, new_envelope(practice_id, e)) for e in events])


async def create_bill(
    db: AsyncSession,
    outbox: Outbox,
    practice_id: str,
    req: BillRequest,
    *,
    now: dt.datetime,
    public_base_url: str,
    platforms: frozenset[str],
) -> list[tuple[Row[Any], BillSnapshot]]:
    """A bill from unbilled sessions of one client, or with a split (the request's, else the
    client profile's for a client-responsibility bill) one bill per party, each line divided by
    the percents. The sessions are locked, so of two requests for the same session one creates
    the bill(s) and the other gets 409. A session paid by a third-party platform (`platforms`)
    is refused with 409."""
    if not req.session_ids or len(set(req.session_ids)) != len(req.session_ids):
        raise domain.RuleViolation("invalid_sessions", "session_ids must be distinct and not empty", status=422)
    settings = await repo.load_settings(db, practice_id)
    client = await repo.get_client(db, practice_id, req.client_id)
    rows = {r.id: r for r in await repo.lock_sessions(db, practice_id, req.session_ids)}
    fees = domain.MissedFees(settings.no_show_fee_cents, settings.late_cancel_fee_cents)
    lines: list[domain.Line] = []
    for sid in req.session_ids:
        row = rows.get(sid)
        if row is None or row.data is None or row.client_id != req.client_id:
            raise domain.RuleViolation("not_found", f"session {sid} not found for this client", status=404)
        if row.voided:
            raise domain.RuleViolation("session_voided", f"session {sid} was voided")
        if row.bill_id is not None:
            raise domain.RuleViolation("session_already_billed", f"session {sid} is already on a bill")
        domain.ensure_client_billable(sid, row.data["payer"], platforms)
        services = [SessionService.model_validate(s) for s in row.data["services"]]
        session_lines = domain.session_lines(sid, row.date_of_service, row.attendance, services, fees)
        if not session_lines:
            raise domain.RuleViolation("session_not_billable", f"session {sid} has nothing billable")
        lines.extend(session_lines)
    lines.sort(key=lambda line: (line.date_of_service, line.session_id))  # stable: a session's lines keep their order
    if settings.service_description == "custom" and settings.custom_service_description:
        lines = [_describe(line, settings.custom_service_description) for line in lines]
    lines = domain.apply_edits(lines, req.edits)
    profile = await repo.load_profile(db, practice_id, req.client_id)
    responsibility = req.responsibility or profile.default_responsibility
    copay, coinsurance = req.copay_cents, req.coinsurance_percent
    if responsibility == "insurance" and copay is None and coinsurance is None:
        copay, coinsurance = profile.copay_cents, profile.coinsurance_percent
    lines = domain.split_lines(lines, responsibility, copay_cents=copay, coinsurance_percent=coinsurance)
    split = req.split if req.split is not None else (profile.split_parts() if responsibility == "client" else [])
    if split:
        if responsibility != "client":
            raise domain.RuleViolation(
                "split_needs_client_responsibility", "only a client-responsibility bill can be split", status=422
            )
        domain.check_split(split)
        recipients = [domain.party_of(client, part.party) for part in split]
        per_party = domain.split_bill_lines(lines, [part.percent for part in split])
        if any(sum(line.amount_cents for line in party_lines) <= 0 for party_lines in per_party):
            raise domain.RuleViolation("split_share_zero", "every party of a split must owe more than $0", status=422)
    else:
        recipients, per_party = [domain.bill_to(client)], [lines]
    group = uuid.uuid4() if split else None
    issued_on = settings.today(now)
    created: list[tuple[Row[Any], BillSnapshot]] = []
    for i, (recipient, party_lines) in enumerate(zip(recipients, per_party, strict=True)):
        number = await repo.next_number(db, practice_id, "bill")
        bill_id = uuid.uuid4()
        values = {
            "id": bill_id,
            "practice_id": practice_id,
            "number": number,
            "client_id": req.client_id,
            "status": "open",
            "responsibility": responsibility,
            "issued_on": issued_on,
            "due_date": domain.due_date(issued_on, req.due_date, settings.default_due_days, settings.default_due_date),
            "comments": req.comments,
            "access_code": domain.access_code(secrets.randbelow(1_000_000)),
            "pay_url": pay_link(public_base_url, practice_id, number),
            "bill_to": recipient.model_dump(mode="json"),
            "patient": domain.patient(client).model_dump(mode="json"),
            "practice": settings.info().model_dump(mode="json"),
            "copay_cents": copay,
            "coinsurance_percent": coinsurance,
            "total_cents": sum(line.amount_cents for line in party_lines),
            "client_share_cents": sum(line.client_owes_cents for line in party_lines),
            "insurance_share_cents": sum(line.insurance_owes_cents for line in party_lines),
            "paid_cents": 0,
            "split_group_id": group,
            "split_percent": split[i].percent if split else None,
            "party": split[i].party if split else None,
            "version": 1,
            "created_at": now,
        }
        if values["total_cents"] <= 0:
            raise domain.RuleViolation("bill_total_zero", "a bill must charge more than $0", status=422)
        await repo.insert_bill(db, values, party_lines)
        if i == 0:  # a split group's sessions point at its first live bill (see cancel_bill)
            await repo.attach_sessions(db, practice_id, req.session_ids, bill_id)
        bill = await repo.get_bill(db, practice_id, bill_id)
        assert bill is not None
        snap = await snapshot(db, bill)
        await stage(outbox, db, practice_id, bill.client_id, BillCreated(bill=snap))
        if settings.auto_share_bills:
            bill = await repo.update_bill(
                db, bill_id, share_scheduled_at=now + dt.timedelta(hours=settings.auto_share_delay_hours)
            )
        created.append((bill, snap))
    return created


def _describe(line: domain.Line, description: str) -> domain.Line:
    return domain.Line(
        line.session_id, line.date_of_service, line.code, description, line.modifiers, line.units, line.amount_cents
    )


async def share_bill(
    db: AsyncSession, outbox: Outbox, bill: Row[Any], *, now: dt.datetime, scheduled_for: dt.datetime | None = None
) -> Row[Any]:
    """Share now (stage BillShared) or at `scheduled_for` (the scheduler shares it then)."""
    if bill.status == "cancelled":
        raise domain.RuleViolation("bill_cancelled", "a cancelled bill cannot be shared")
    if scheduled_for is not None and scheduled_for > now:
        return await repo.update_bill(db, bill.id, share_scheduled_at=scheduled_for)
    snap = await snapshot(db, bill)
    delivery = await share_delivery(db, bill.practice_id, bill.client_id, snap.bill_to, action_url=snap.pay_url)
    await stage(outbox, db, bill.practice_id, bill.client_id, BillShared(bill=snap, share=delivery))
    return await repo.update_bill(db, bill.id, shared=True, shared_at=now, share_scheduled_at=None)


async def share_delivery(
    db: AsyncSession, practice_id: str, client_id: str, recipient: Party, *, action_url: str | None = None
) -> ShareDelivery:
    """How a share is delivered: the PDF attached per the practice's setting; by email when
    the recipient has an address and the client's profile does not say portal only."""
    settings = await repo.load_settings(db, practice_id)
    profile = await repo.load_profile(db, practice_id, client_id)
    return ShareDelivery(
        recipient=recipient,
        attach_pdf=settings.attach_pdf,
        email=bool(recipient.email) and profile.delivery == "email",
        action_url=action_url,
    )


async def cancel_bill(
    db: AsyncSession, outbox: Outbox, bill: Row[Any], *, now: dt.datetime, reason: str | None
) -> tuple[Row[Any], BillSnapshot]:
    """Cancel (the bill row is locked by the caller): only while no payment on it stands
    unrefunded; its sessions return to Unbilled, those of a split group only with its last
    live bill."""
    facts = await repo.bill_facts(db, bill.id)
    domain.ensure_cancellable(bill.status, repo.as_facts(facts))
    bill = await repo.update_bill(
        db, bill.id, status="cancelled", cancelled_at=now, cancel_reason=reason,
        share_scheduled_at=None, version=bill.version + 1,
    )  # fmt: skip
    live = await repo.live_group_bills(db, bill.split_group_id) if bill.split_group_id else []
    if live:
        await repo.move_sessions(db, bill.practice_id, bill.id, live[0])
    else:
        await repo.release_sessions(db, bill.practice_id, bill.id)
    snap = await snapshot(db, bill)
    await stage(outbox, db, bill.practice_id, bill.client_id, BillCancelled(bill=snap, reason=reason))
    return bill, snap


async def current_standing(db: AsyncSession, bill: Row[Any]) -> domain.Standing:
    return (await _standing_with_rows(db, bill))[0]


async def _standing_with_rows(
    db: AsyncSession, bill: Row[Any]
) -> tuple[domain.Standing, list[Row[Any]], list[Row[Any]]]:
    """The bill's standing and the fact and adjustment rows it comes from."""
    facts = await repo.bill_facts(db, bill.id)
    adjustments = (await repo.adjustments_of_bills(db, [bill.id])).get(bill.id, [])
    standing = domain.standing(
        bill.total_cents, bill.client_share_cents, repo.as_facts(facts), repo.standing_adjustments(adjustments)
    )
    return standing, facts, adjustments


async def refresh(db: AsyncSession, outbox: Outbox, bill: Row[Any]) -> Row[Any]:
    """After a fact or adjustment changed: re-derive paid, adjusted and status from all of
    them, bump the version and stage one event for the new version (BillPaid when it just
    became paid, else BillUpdated). The facts and adjustments are read once, for both."""
    standing, facts, adjustments = await _standing_with_rows(db, bill)
    status = domain.status_after(bill.status, standing.balance_cents, standing.adjusted_cents)
    updated = await repo.update_bill(
        db, bill.id, paid_cents=standing.paid_cents, adjusted_cents=standing.adjusted_cents, status=status,
        version=bill.version + 1,
    )  # fmt: skip
    snap = _snapshot(updated, (await repo.lines_of_bills(db, [bill.id])).get(bill.id, []), facts, adjustments)
    event: Model = BillPaid(bill=snap) if status == "paid" and bill.status != "paid" else BillUpdated(bill=snap)
    await stage(outbox, db, bill.practice_id, bill.client_id, event)
    return updated


async def apply_payment(
    db: AsyncSession,
    outbox: Outbox,
    practice_id: str,
    *,
    bill_id: str,
    fact: dict[str, Any],
    client_id: str,
) -> None:
    """One allocation of a payment to one of our bills. A bill cancelled meanwhile cannot
    take it, nor can cents an adjustment cleared meanwhile: AllocationRejected tells payments
    to make that amount client credit."""
    bill = await repo.get_bill(db, practice_id, bill_id, lock=True)
    if bill is None:
        await repo.refuse_foreign_bill(db, practice_id, bill_id)
        log.warning("payment %s names unknown bill %s; ignored", fact["payment_id"], bill_id)
        return
    if bill.status == "cancelled":
        await _reject(outbox, db, practice_id, client_id, fact, bill_id, fact["amount_cents"], "bill_cancelled")
        return
    if fact["kind"] == "payment" and bill.adjusted_cents > 0 and not await repo.has_fact(db, bill.id, fact):
        excess = domain.payment_excess(await current_standing(db, bill), fact["payer"], fact["amount_cents"])
        if excess:
            await _reject(outbox, db, practice_id, client_id, fact, bill_id, excess, "bill_adjusted")
            fact = fact | {"amount_cents": fact["amount_cents"] - excess}
            if fact["amount_cents"] <= 0:
                return
    if await repo.add_fact(db, bill.id, **fact):
        await refresh(db, outbox, bill)


async def _reject(
    outbox: Outbox, db: AsyncSession, practice_id: str, client_id: str, fact: dict[str, Any], bill_id: str,
    amount_cents: int, reason: str,
) -> None:  # fmt: skip
    rejected = AllocationRejected(
        payment_id=fact["payment_id"], bill_id=bill_id, client_id=client_id, amount_cents=amount_cents, reason=reason
    )
    await stage(outbox, db, practice_id, client_id, rejected)


async def adjust_bill(
    db: AsyncSession, outbox: Outbox, bill: Row[Any], *, payer: domain.Responsibility, amount_cents: int,
    kind: domain.AdjustmentKind, reason: str, now: dt.datetime,
) -> tuple[Row[Any], BillAdjustment]:  # fmt: skip
    """A write-off, discount or bad debt on a locked bill: lowers what `payer` owes, never
    below zero (422 above it). Stages BillAdjusted and the bill's new version."""
    domain.ensure_adjustable(bill.status, await current_standing(db, bill), payer, amount_cents)
    row = await repo.add_adjustment(
        db, id=uuid.uuid4(), bill_id=bill.id, payer=payer, kind=kind, amount_cents=amount_cents, reason=reason,
        created_at=now,
    )  # fmt: skip
    adjustment = adjustment_view(row)
    adjusted = BillAdjusted(bill_id=str(bill.id), client_id=bill.client_id, adjustment=adjustment)
    await stage(outbox, db, bill.practice_id, bill.client_id, adjusted)
    return await refresh(db, outbox, bill), adjustment


async def reverse_adjustment(
    db: AsyncSession, outbox: Outbox, bill: Row[Any], adjustment_id: str, *, reason: str | None, now: dt.datetime
) -> tuple[Row[Any], BillAdjustment]:
    """Undo one adjustment of a locked bill that is not cancelled: what it took off is owed again."""
    row = await repo.get_adjustment(db, bill.id, adjustment_id)
    if row is None:
        raise domain.RuleViolation("not_found", "adjustment not found", status=404)
    if row.reversed_at is not None:
        raise domain.RuleViolation("adjustment_reversed", "this adjustment was already reversed")
    if bill.status == "cancelled":
        raise domain.RuleViolation("bill_cancelled", "an adjustment of a cancelled bill cannot be reversed")
    adjustment = adjustment_view(await repo.reverse_adjustment(db, row.id, now, reason))
    reversed_ = BillAdjustmentReversed(bill_id=str(bill.id), client_id=bill.client_id, adjustment=adjustment)
    await stage(outbox, db, bill.practice_id, bill.client_id, reversed_)
    return await refresh(db, outbox, bill), adjustment


async def apply_refund(
    db: AsyncSession, outbox: Outbox, practice_id: str, *, bill_id: str, fact: dict[str, Any]
) -> None:
    bill = await repo.get_bill(db, practice_id, bill_id, lock=True)
    if bill is None:
        await repo.refuse_foreign_bill(db, practice_id, bill_id)
    if bill is None or bill.status == "cancelled":
        log.warning("refund %s names bill %s that cannot take it; ignored", fact["fact_id"], bill_id)
        return
    if await repo.add_fact(db, bill.id, **fact):
        await refresh(db, outbox, bill)


async def flag_voided_session(
    db: AsyncSession, outbox: Outbox, practice_id: str, bill_id: uuid.UUID, session_id: str
) -> None:
    """A billed session was voided: flag its lines (nothing deleted) and re-render the bill, and
    every live bill of its split group."""
    bill = await repo.get_bill(db, practice_id, bill_id, lock=True)
    if bill is None:
        return
    group = await repo.live_group_bills(db, bill.split_group_id) if bill.split_group_id else [bill.id]
    for bid in group:
        row = bill if bid == bill.id else await repo.get_bill(db, practice_id, bid, lock=True)
        assert row is not None
        await repo.void_lines(db, row.id, session_id)
        updated = await repo.update_bill(db, row.id, version=row.version + 1)
        await stage(outbox, db, practice_id, row.client_id, BillUpdated(bill=await snapshot(db, updated)))
