"""Billing's HTTP API (CONTRACT.md, billing): thin routes over the use-cases in bills.py."""

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import bills, domain, estimates
from services.billing import repository as repo
from services.billing.practice import PracticeSettingsUpdate, SettingsView, SplitPartIn
from shared import topics
from shared.auth import (
    CurrentPrincipal,
    PracticeReader,
    Principal,
    StaffPrincipal,
    ensure_client_access,
    ensure_shared_with,
)
from shared.events import SessionService, new_envelope
from shared.http import ApiError, idempotent_answer, not_found, request_fingerprint
from shared.runtime import ServiceDep
from shared.validation import Cents, Day, Id, Moment, Name, Percent, PositiveCents, RequestModel, Text

router = APIRouter(prefix="/v1", tags=["billing"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Limit = Annotated[int, Query(ge=1, le=200)]


class LineIn(RequestModel):
    session_id: Id
    code: Name = Field(min_length=1)
    description: Text | None = None
    amount_cents: Cents


class BillIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Id
    session_ids: list[Id] = Field(min_length=1)
    responsibility: Literal["client", "insurance"] | None = Field(
        default=None, description="default: the client's billing profile (client unless set)"
    )
    lines: list[LineIn] | None = None
    copay_cents: Cents | None = None
    coinsurance_percent: Percent | None = None
    comments: Text | None = None
    due_date: Day | None = None
    split: list[SplitPartIn] | None = Field(
        default=None,
        description="one bill per party, each line divided by the percents (default: the client profile's split; "
        "[] = not split)",
    )


class ShareIn(RequestModel):
    scheduled_for: Moment | None = None


class CancelIn(RequestModel):
    reason: str | None = Field(default=None, max_length=500)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def run_write(
    svc: Any,
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    work: Callable[[AsyncSession], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """One write: claim the Idempotency-Key, do the work, store the answer, all in one
    transaction (with the outbox rows the work staged). A retry gets the first answer."""
    fingerprint = request_fingerprint(request.method, request.url.path, body)

    async def encoded(db: AsyncSession) -> tuple[int, Any]:
        try:
            status, result = await work(db)
        except domain.RuleViolation as exc:
            raise ApiError(exc.status, exc.code, exc.message) from exc
        return status, jsonable_encoder(result)

    async with svc.db.transaction() as db:
        status, result = await idempotent_answer(
            db, svc.idempotency_table, principal.practice_id, principal.scoped_key(key), fingerprint, encoded
        )
    return JSONResponse(result, status_code=status)


async def run_share(
    svc: Any,
    request: Request,
    principal: Principal,
    key: str | None,
    body: ShareIn | None,
    share: Callable[[AsyncSession, dt.datetime | None], Awaitable[tuple[Row[Any], dict[str, Any]]]],
) -> JSONResponse:
    """The write of every share route (bills, statements, superbills): `share` shares now or
    schedules for `scheduled_for` and returns the row and its view; 202 when scheduled, else 200."""
    share_in = body or ShareIn()

    async def work(db: AsyncSession) -> tuple[int, Any]:
        row, view = await share(db, share_in.scheduled_for)
        return (202 if row.share_scheduled_at else 200), view

    return await run_write(svc, request, principal, key, share_in.model_dump(mode="json"), work)


# ---- unbilled ------------------------------------------------------------------------------


@router.get("/unbilled-sessions")
async def unbilled_sessions(
    svc: ServiceDep,
    principal: StaffPrincipal,
    client_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The Unbilled section: sessions with something to bill and no live bill, newest first
    (sessions a third-party platform pays are not here: payments reconciles their payouts).
    `amount_cents` is the sum of the session's billable lines (fee_cents of each billable
    service above $0; a missed session's practice fee)."""
    async with svc.db.transaction() as db:
        rows, next_cursor = await repo.unbilled_sessions(
            db, principal.practice_id, client_id, limit, cursor, platforms=svc.settings.platforms()
        )
    items = []
    for r in rows:
        fees = domain.MissedFees(r.no_show_fee_cents, r.late_cancel_fee_cents)
        services = [SessionService.model_validate(s) for s in r.data["services"]]
        lines = domain.session_lines(r.id, r.date_of_service, r.attendance, services, fees)
        items.append(
            {
                "session_id": r.id,
                "client_id": r.client_id,
                "client_name": f"{r.first_name} {r.last_name}",
                "clinician_id": r.clinician_id,
                "date_of_service": r.date_of_service,
                "attendance": r.attendance,
                "payer": r.data["payer"],
                "services": [
                    {
                        "code": ln.code,
                        "description": ln.description,
                        "modifiers": list(ln.modifiers),
                        "units": ln.units,
                        "fee_cents": ln.amount_cents,
                    }
                    for ln in lines
                ],
                "amount_cents": sum(ln.amount_cents for ln in lines),
            }
        )
    return {"items": jsonable_encoder(items), "next_cursor": next_cursor}


# ---- bills ---------------------------------------------------------------------------------


async def bill_or_404(db: AsyncSession, practice_id: str, bill_id: str, *, lock: bool = False) -> Row[Any]:
    bill = await repo.get_bill(db, practice_id, bill_id, lock=lock)
    if bill is None:
        raise not_found("bill")
    return bill


@router.post("/bills", status_code=201)
async def create_bill(
    body: BillIn, request: Request, svc: ServiceDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> JSONResponse:
    """201 the bill; a split bill (the request's `split`, or the client profile's) answers
    `{"items": [bill, ...]}`, one per party, sharing `split_group_id`."""
    req = bills.BillRequest(
        client_id=body.client_id,
        session_ids=body.session_ids,
        responsibility=body.responsibility,
        edits=[domain.LineEdit(ln.session_id, ln.code, ln.description, ln.amount_cents) for ln in body.lines or []],
        copay_cents=body.copay_cents,
        coinsurance_percent=body.coinsurance_percent,
        comments=body.comments,
        due_date=body.due_date,
        split=None if body.split is None else [domain.SplitPart(p.party, p.percent) for p in body.split],
    )

    async def work(db: AsyncSession) -> tuple[int, Any]:
        created = await bills.create_bill(
            db, svc.outbox, principal.practice_id, req, now=now(), public_base_url=svc.settings.public_base_url,
            platforms=svc.settings.platforms(),
        )  # fmt: skip
        views = [bills.view(bill, snap) for bill, snap in created]
        warnings = await estimates.check_exceeded(db, svc.outbox, principal.practice_id, req.client_id, now=now())
        answer = {"items": views} if created[0][0].split_group_id else views[0]
        return 201, answer | {"warnings": warnings}

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)


@router.get("/bills")
async def list_bills(
    svc: ServiceDep,
    principal: CurrentPrincipal,
    status: Literal["open", "paid", "closed", "cancelled"] | None = None,
    client_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Bills newest first; a client sees only their own."""
    if not principal.is_staff:
        if client_id and client_id != principal.client_id:
            return {"items": [], "next_cursor": None}
        client_id = principal.client_id
    async with svc.db.snapshot() as db:
        rows, next_cursor = await repo.list_bills(
            db, principal.practice_id, client_id=client_id, status=status, limit=limit, cursor=cursor,
            shared_only=not principal.is_staff,
        )  # fmt: skip
        snaps = await bills.snapshots(db, rows)
    items = [bills.client_view(principal, r, snap) for r, snap in zip(rows, snaps, strict=True)]
    return {"items": jsonable_encoder(items), "next_cursor": next_cursor}


@router.get("/bills/{bill_id}")
async def get_bill(bill_id: str, svc: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with svc.db.snapshot() as db:
        bill = await bill_or_404(db, principal.practice_id, bill_id)
        ensure_client_access(principal, bill.client_id, "bill")
        ensure_shared_with(principal, bill.shared, "bill")
        return jsonable_encoder(bills.client_view(principal, bill, await bills.snapshot(db, bill)))


@router.post("/bills/{bill_id}/share")
async def share_bill(
    bill_id: str,
    request: Request,
    svc: ServiceDep,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
    body: ShareIn | None = None,
) -> JSONResponse:
    """Share now (200) or schedule the share for `scheduled_for` (202)."""

    async def share(db: AsyncSession, scheduled_for: dt.datetime | None) -> tuple[Row[Any], dict[str, Any]]:
        bill = await bill_or_404(db, principal.practice_id, bill_id, lock=True)
        bill = await bills.share_bill(db, svc.outbox, bill, now=now(), scheduled_for=scheduled_for)
        return bill, bills.view(bill, await bills.snapshot(db, bill))

    return await run_share(svc, request, principal, key, body, share)


@router.post("/bills/{bill_id}/cancel")
async def cancel_bill(
    bill_id: str,
    request: Request,
    svc: ServiceDep,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
    body: CancelIn | None = None,
) -> JSONResponse:
    cancel = body or CancelIn()

    async def work(db: AsyncSession) -> tuple[int, Any]:
        bill = await bill_or_404(db, principal.practice_id, bill_id, lock=True)
        bill, snap = await bills.cancel_bill(db, svc.outbox, bill, now=now(), reason=cancel.reason)
        return 200, bills.view(bill, snap)

    return await run_write(svc, request, principal, key, cancel.model_dump(mode="json"), work)


class AdjustmentIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: PositiveCents
    kind: domain.AdjustmentKind
    reason: str = Field(min_length=1, max_length=500)
    payer: Literal["client", "insurance"] = Field(
        default="client", description="whose share it lowers (insurance: e.g. a contractual write-off)"
    )


class ReverseIn(RequestModel):
    reason: str | None = Field(default=None, max_length=500)


def adjustment_answer(bill_id: Any, adjustment: Any) -> dict[str, Any]:
    return {"bill_id": str(bill_id)} | adjustment.model_dump(mode="json")


@router.post("/bills/{bill_id}/adjustments", status_code=201)
async def adjust_bill(
    bill_id: str, body: AdjustmentIn, request: Request, svc: ServiceDep, principal: StaffPrincipal,
    key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """A write-off, discount or bad debt: lowers what is owed without moving money (422 above
    the payer's open balance). The bill reaching 0 this way is `closed`."""

    async def work(db: AsyncSession) -> tuple[int, Any]:
        bill = await bill_or_404(db, principal.practice_id, bill_id, lock=True)
        bill, adjustment = await bills.adjust_bill(
            db, svc.outbox, bill, payer=body.payer, amount_cents=body.amount_cents, kind=body.kind,
            reason=body.reason, now=now(),
        )  # fmt: skip
        return 201, adjustment_answer(bill.id, adjustment)

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)


@router.post("/bills/{bill_id}/adjustments/{adjustment_id}/reverse")
async def reverse_adjustment(
    bill_id: str, adjustment_id: str, request: Request, svc: ServiceDep, principal: StaffPrincipal,
    key: IdempotencyKey = None, body: ReverseIn | None = None,
) -> JSONResponse:  # fmt: skip
    """Undo one adjustment: what it took off is owed again (a closed bill reopens)."""
    reverse = body or ReverseIn()

    async def work(db: AsyncSession) -> tuple[int, Any]:
        bill = await bill_or_404(db, principal.practice_id, bill_id, lock=True)
        bill, adjustment = await bills.reverse_adjustment(
            db, svc.outbox, bill, adjustment_id, reason=reverse.reason, now=now()
        )
        return 200, adjustment_answer(bill.id, adjustment)

    return await run_write(svc, request, principal, key, reverse.model_dump(mode="json"), work)


# ---- settings ------------------------------------------------------------------------------


@router.get("/settings", response_model=SettingsView)
async def get_settings(svc: ServiceDep, principal: PracticeReader) -> SettingsView:
    async with svc.db.transaction() as db:
        return SettingsView.of(await repo.load_settings(db, principal.practice_id))


@router.put("/settings", response_model=SettingsView)
async def put_settings(
    body: PracticeSettingsUpdate,
    request: Request,
    svc: ServiceDep,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Fields sent replace the stored ones; they apply to bills created afterwards. A change of
    what autopay depends on (timezone, time, insurance rule) is published for payments."""

    async def work(db: AsyncSession) -> tuple[int, Any]:
        first = not await repo.has_settings(db, principal.practice_id)
        current = await repo.load_settings(db, principal.practice_id, lock=True)
        try:
            updated = body.apply_to(current)
        except ValidationError as exc:
            raise ApiError(422, "validation_error", "; ".join(e["msg"] for e in exc.errors()[:5])) from exc
        await repo.save_settings(db, principal.practice_id, updated)
        if first or updated.automation() != current.automation():
            await svc.outbox.stage(
                db, topics.BILLING, [(principal.practice_id, new_envelope(principal.practice_id, updated.automation()))]
            )
        return 200, SettingsView.of(updated).model_dump(mode="json")

    return await run_write(svc, request, principal, key, body.model_dump(mode="json", exclude_unset=True), work)
