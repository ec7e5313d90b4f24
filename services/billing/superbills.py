"""Superbills: a client's sessions as an insurer's claim form needs them (CMS-1500 fields),
for the client to seek reimbursement. Built here, checked with the same CMS-1500 rules that
documents applies before rendering (`shared.superbill_rules`, pure), so an
incomplete superbill is refused with the missing fields named instead of half-printed."""

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing import repository as repo
from services.billing.db import bill_lines, bill_payments, bills, clinicians, sessions, superbills
from services.billing.issued import IssuedKind
from shared.events import Client, DocumentSource, SessionService, SuperbillCreated, SuperbillShared
from shared.outbox import Outbox
from shared.superbill_rules import superbill_problems

PayTo = Literal["clinic", "provider", "client", "none"]

SUPERBILLS = IssuedKind(
    name="superbill",
    table=superbills,
    created=lambda source: SuperbillCreated(superbill=source),
    shared=lambda source, share: SuperbillShared(superbill=source, share=share),
    row_fields=("session_ids",),
)


def provider(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {
        "name": f"{data['first_name']} {data['last_name']}",
        "credentials": data.get("credentials"),
        "npi": data.get("npi"),
        "license_number": data.get("license_number"),
        "taxonomy_code": data.get("taxonomy_code"),
    }


def client_paid_by_line(lines: Sequence[Row[Any]], paid_by_bill: dict[uuid.UUID, int]) -> dict[tuple[str, str], int]:
    """What the client has paid toward each (session, code), spreading each bill's client
    payments over its lines in order."""
    out: dict[tuple[str, str], int] = {}
    left = dict(paid_by_bill)
    for line in lines:
        take = max(0, min(left.get(line.bill_id, 0), line.amount_cents))
        left[line.bill_id] = left.get(line.bill_id, 0) - take
        out[(line.session_id, line.code)] = out.get((line.session_id, line.code), 0) + take
    return out


async def _client_payments(
    db: AsyncSession, session_ids: Sequence[str], practice_id: str
) -> dict[tuple[str, str], int]:
    lines = (
        await db.execute(
            select(bill_lines)
            .join(bills, bills.c.id == bill_lines.c.bill_id)
            .where(
                bills.c.practice_id == practice_id,
                bills.c.status != "cancelled",
                bill_lines.c.session_id.in_(list(session_ids)),
            )
            .order_by(bill_lines.c.bill_id, bill_lines.c.position)
        )
    ).all()
    bill_ids = {line.bill_id for line in lines}
    paid: dict[uuid.UUID, int] = {}
    if bill_ids:
        for f in (await db.execute(select(bill_payments).where(bill_payments.c.bill_id.in_(bill_ids)))).all():
            if f.payer == "client":
                paid[f.bill_id] = paid.get(f.bill_id, 0) + (f.amount_cents if f.kind == "payment" else -f.amount_cents)
    return client_paid_by_line(lines, paid)


async def _sessions(
    db: AsyncSession, practice_id: str, client_id: str, session_ids: Sequence[str] | None,
    start: dt.date | None, end: dt.date | None,
) -> list[Row[Any]]:  # fmt: skip
    query = select(sessions).where(
        sessions.c.practice_id == practice_id, sessions.c.client_id == client_id, sessions.c.data.is_not(None)
    )
    if session_ids is not None:
        rows = (await db.execute(query.where(sessions.c.id.in_(list(session_ids))))).all()
        found = {r.id for r in rows}
        missing = [s for s in session_ids if s not in found]
        if missing:
            raise domain.RuleViolation("not_found", f"sessions not found for this client: {missing}", status=404)
        voided = [r.id for r in rows if r.voided]
        if voided:
            raise domain.RuleViolation("session_voided", f"sessions were voided: {voided}")
        return sorted(rows, key=lambda r: (r.date_of_service, r.id))
    assert start is not None and end is not None
    query = query.where(
        ~sessions.c.voided,
        sessions.c.attendance == "attended",
        and_(sessions.c.date_of_service >= start, sessions.c.date_of_service <= end),
    )
    return list((await db.execute(query.order_by(sessions.c.date_of_service, sessions.c.id))).all())


async def build_body(
    db: AsyncSession, practice_id: str, client: Client, rows: Sequence[Row[Any]],
    start: dt.date | None, end: dt.date | None, pay_to: PayTo,
) -> dict[str, Any]:  # fmt: skip
    clinician_ids = {r.clinician_id for r in rows} | {r.data.get("supervisor_clinician_id") for r in rows}
    known = {
        r.id: r.data
        for r in (
            await db.execute(
                select(clinicians).where(
                    clinicians.c.practice_id == practice_id, clinicians.c.id.in_(clinician_ids - {None})
                )
            )
        ).all()
    }
    paid = await _client_payments(db, [r.id for r in rows], practice_id)
    lines = []
    for r in rows:
        supervisor_id = r.data.get("supervisor_clinician_id")
        for s in (SessionService.model_validate(x) for x in r.data["services"]):
            if not s.billable or s.fee_cents <= 0 or r.attendance != "attended":
                continue
            lines.append(
                {
                    "session_id": r.id,
                    "date_of_service": r.date_of_service.isoformat(),
                    "place_of_service": r.data["place_of_service"],
                    "code": s.code,
                    "modifiers": s.modifiers,
                    "description": s.description,
                    "units": s.units,
                    "diagnosis_codes": r.data.get("diagnosis_codes", []),
                    "fee_cents": s.fee_cents,
                    "paid_cents": paid.get((r.id, s.code), 0),
                    "provider": provider(known.get(r.clinician_id)),
                    "supervisor": provider(known.get(supervisor_id)) if supervisor_id else None,
                }
            )
    days = [dt.date.fromisoformat(line["date_of_service"]) for line in lines]
    guardian = domain.bill_to(client) if client.is_minor else None
    contact = next((g for g in client.guardians if g.is_billing_contact), None) if client.is_minor else None
    return {
        "patient_date_of_birth": client.date_of_birth.isoformat(),
        "patient_is_minor": client.is_minor,
        "responsible_party": {
            "name": guardian.name,
            "relationship": contact.relationship if contact else None,
            "phone": contact.phone if contact else None,
            "address": client.address.model_dump(mode="json"),
        }
        if guardian
        else None,
        "insurance": client.insurance.model_dump(mode="json") if client.insurance else None,
        "start_date": _iso(start or (min(days) if days else None)),
        "end_date": _iso(end or (max(days) if days else None)),
        "lines": lines,
        "pay_to": pay_to,
        "total_fee_cents": sum(line["fee_cents"] for line in lines),
        "total_paid_cents": sum(line["paid_cents"] for line in lines),
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


async def create_superbill(
    db: AsyncSession, outbox: Outbox, practice_id: str, *, client_id: str, session_ids: Sequence[str] | None,
    start: dt.date | None, end: dt.date | None, pay_to: PayTo, now: dt.datetime,
) -> Row[Any]:  # fmt: skip
    if session_ids is None and (start is None or end is None):
        raise domain.RuleViolation("invalid_request", "give session_ids or start_date and end_date", status=422)
    if start is not None and end is not None and end < start:
        raise domain.RuleViolation("invalid_range", "end_date is before start_date", status=422)
    settings = await repo.load_settings(db, practice_id)
    client = await repo.get_client(db, practice_id, client_id)
    rows = await _sessions(db, practice_id, client_id, session_ids, start, end)
    body = await build_body(db, practice_id, client, rows, start, end, pay_to)
    practice, patient = settings.info(), domain.patient(client)
    problems = superbill_problems(practice, patient, body)
    if problems:
        raise domain.RuleViolation("superbill_incomplete", "; ".join(problems))
    number = await repo.next_number(db, practice_id, "superbill")
    source = DocumentSource(
        id=str(uuid.uuid4()), number=number, client_id=client_id, kind="superbill", issued_on=settings.today(now),
        bill_to=domain.bill_to(client), patient=patient, practice=practice, body=body,
    )  # fmt: skip
    auto_share = dt.timedelta(hours=settings.auto_share_delay_hours) if settings.auto_share_superbills else None
    return await SUPERBILLS.issue(
        db, outbox, practice_id, source, now=now, auto_share_in=auto_share, session_ids=[r.id for r in rows]
    )
