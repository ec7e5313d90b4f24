"""Good Faith Estimates: issued like statements (numbered, rendered by documents, shared by
email and portal), plus what billing tracks on them: `billed_cents`, what the client's bills
(not cancelled) charge for services in the estimate's period, and `GoodFaithEstimateExceeded`
the first time that reaches the estimate plus $400 (checked after every bill creation, whose
answer then carries a `good_faith_estimate_exceeded` warning)."""

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing import estimate_rules as rules
from services.billing import repository as repo
from services.billing.bills import stage
from services.billing.db import bill_lines, bills, clinicians, good_faith_estimates
from services.billing.issued import IssuedKind
from shared import audit
from shared.events import (
    DocumentSource,
    GoodFaithEstimateCreated,
    GoodFaithEstimateExceeded,
    GoodFaithEstimateShared,
)
from shared.outbox import Outbox
from shared.validation import Day, Id, RequestModel

ESTIMATES = IssuedKind(
    name="good_faith_estimate",
    table=good_faith_estimates,
    created=lambda source: GoodFaithEstimateCreated(estimate=source),
    shared=lambda source, share: GoodFaithEstimateShared(estimate=source, share=share),
    row_fields=("period_start", "period_end", "total_cents"),
)


class ItemIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=300)
    fee_cents: Annotated[int, Field(strict=True, ge=0, le=10_000_000)]
    quantity: Annotated[int, Field(strict=True, ge=1, le=1000)]


class EstimateIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Id
    clinician_id: Id
    period_start: Day
    period_end: Day
    items: list[ItemIn] = Field(min_length=1, max_length=100)
    diagnosis_codes: list[str] | None = Field(default=None, max_length=12)
    comments: str | None = Field(default=None, max_length=2000)
    renew_yearly: bool = Field(default=False, description="issue the next year's estimate when this period ends")


async def create_estimate(
    db: AsyncSession, outbox: Outbox, practice_id: str, body: EstimateIn, *, now: dt.datetime
) -> Row[Any]:
    rules.check_period(body.period_start, body.period_end)
    items = [rules.Item(i.code, i.description, i.fee_cents, i.quantity) for i in body.items]
    total = rules.total_cents(items)
    settings = await repo.load_settings(db, practice_id)
    client = await repo.get_client(db, practice_id, body.client_id)
    clinician = await db.scalar(
        select(clinicians.c.data).where(clinicians.c.practice_id == practice_id, clinicians.c.id == body.clinician_id)
    )
    if clinician is None:
        raise domain.RuleViolation("not_found", "clinician not found", status=404)
    missing = rules.missing_fields(settings.info(), clinician.get("npi"))
    if missing:
        raise domain.RuleViolation("good_faith_estimate_incomplete", "missing: " + ", ".join(missing))
    number = await repo.next_number(db, practice_id, "good_faith_estimate")
    source = DocumentSource(
        id=str(uuid.uuid4()),
        number=number,
        client_id=body.client_id,
        kind="good_faith_estimate",
        issued_on=settings.today(now),
        bill_to=domain.bill_to(client),
        patient=domain.patient(client),
        practice=settings.info(),
        body={
            "start_date": body.period_start.isoformat(),
            "end_date": body.period_end.isoformat(),
            "patient_date_of_birth": client.date_of_birth.isoformat(),
            "clinician": {
                "name": f"{clinician['first_name']} {clinician['last_name']}",
                "credentials": clinician.get("credentials"),
                "npi": clinician["npi"],
            },
            "items": [
                {
                    "code": i.code,
                    "description": i.description,
                    "quantity": i.quantity,
                    "fee_cents": i.fee_cents,
                    "total_cents": i.fee_cents * i.quantity,
                }
                for i in items
            ],
            "total_cents": total,
            "diagnosis_codes": body.diagnosis_codes or [],
            "comments": body.comments,
            "currency": settings.currency,
            "dispute_threshold_cents": rules.DISPUTE_THRESHOLD_CENTS,
        },
    )
    return await ESTIMATES.issue(
        db, outbox, practice_id, source, now=now, auto_share_in=None, clinician_id=body.clinician_id,
        period_start=body.period_start, period_end=body.period_end, total_cents=total,
        renew_yearly=body.renew_yearly,
    )  # fmt: skip


async def billed_cents(db: AsyncSession, practice_id: str, client_id: str, start: dt.date, end: dt.date) -> int:
    """What the client's bills, not cancelled, charge for services dated in [start, end] (voided
    lines left out)."""
    query = (
        select(func.coalesce(func.sum(bill_lines.c.amount_cents), 0))
        .join(bills, bills.c.id == bill_lines.c.bill_id)
        .where(
            bills.c.practice_id == practice_id,
            bills.c.client_id == client_id,
            bills.c.status != "cancelled",
            ~bill_lines.c.voided,
            bill_lines.c.date_of_service.between(start, end),
        )
    )
    return int(await db.scalar(query))


async def view(db: AsyncSession, row: Row[Any]) -> dict[str, Any]:
    billed = await billed_cents(db, row.practice_id, row.client_id, row.period_start, row.period_end)
    return ESTIMATES.view(row) | {
        "clinician_id": row.clinician_id,
        "billed_cents": billed,
        "exceeds_by_cents": rules.exceeds_by(row.total_cents, billed),
        "exceeded_at": row.exceeded_at,
        "renew_yearly": row.renew_yearly,
    }


async def check_exceeded(
    db: AsyncSession, outbox: Outbox, practice_id: str, client_id: str, *, now: dt.datetime
) -> list[dict[str, Any]]:
    """After bills were created for the client: each estimate whose period's bills now first
    reach it plus $400 is stamped and announced (GoodFaithEstimateExceeded); returns the warnings."""
    t = good_faith_estimates
    rows = (
        await db.execute(
            select(t)
            .where(t.c.practice_id == practice_id, t.c.client_id == client_id, t.c.exceeded_at.is_(None))
            .order_by(t.c.number)
            .with_for_update()
        )
    ).all()
    warnings = []
    for row in rows:
        billed = await billed_cents(db, practice_id, client_id, row.period_start, row.period_end)
        over = rules.exceeds_by(row.total_cents, billed)
        if not over:
            continue
        await db.execute(update(t).where(t.c.id == row.id).values(exceeded_at=now))
        event = GoodFaithEstimateExceeded(
            estimate_id=str(row.id), client_id=client_id, number=row.number, total_cents=row.total_cents,
            billed_cents=billed, exceeds_by_cents=over,
        )  # fmt: skip
        await stage(outbox, db, practice_id, client_id, event)
        warnings.append(
            {
                "code": "good_faith_estimate_exceeded",
                "message": f"the client's bills for {row.period_start} to {row.period_end} come to {billed} cents, "
                f"{over} above Good Faith Estimate #{row.number}; the client may dispute them",
                "estimate_id": str(row.id),
                "exceeds_by_cents": over,
            }
        )
    return warnings


async def renew_due(db: AsyncSession, outbox: Outbox, practice_id: str, *, now: dt.datetime) -> list[dict[str, Any]]:
    """Estimates set to renew yearly whose period ended before the practice's today: the next
    period's estimate (same clinician, items and length) is issued and shared, once each; one
    that a rule refuses is reported and tried again on the next run."""
    settings = await repo.load_settings(db, practice_id)
    t = good_faith_estimates
    due = (
        await db.execute(
            select(t)
            .where(t.c.practice_id == practice_id, t.c.renew_yearly, t.c.renewed_by.is_(None),
                   t.c.period_end < settings.today(now))
            .order_by(t.c.number)
            .with_for_update(skip_locked=True)
        )
    ).all()  # fmt: skip
    renewed = []
    for row in due:
        body = row.source["body"]
        start, end = rules.renewal_period(row.period_start, row.period_end)
        request = EstimateIn(
            client_id=row.client_id, clinician_id=row.clinician_id, period_start=start, period_end=end,
            items=[ItemIn(code=i["code"], description=i["description"], fee_cents=i["fee_cents"],
                          quantity=i["quantity"]) for i in body["items"]],
            diagnosis_codes=body.get("diagnosis_codes") or None, comments=body.get("comments"), renew_yearly=True,
        )  # fmt: skip
        try:
            async with db.begin_nested():
                new = await create_estimate(db, outbox, practice_id, request, now=now)
                await ESTIMATES.share(db, outbox, new, now=now)
                await audit.automation(db, outbox, "billing", practice_id, "renew_good_faith_estimate",
                                       "good_faith_estimate", str(new.id), row.client_id)  # fmt: skip
                await db.execute(update(t).where(t.c.id == row.id).values(renewed_by=new.id))
        except domain.RuleViolation as exc:  # e.g. the practice's NPI removed: reported, retried next run
            renewed.append({"estimate_id": str(row.id), "skipped": exc.code, "detail": exc.message})
            continue
        renewed.append({"estimate_id": str(row.id), "renewed_by": str(new.id), "number": new.number})
    return renewed
