"""Payment plans: a client's open bills paid in installments (weekly, biweekly or monthly) by an
authorized card on file. The nightly autopay run charges each installment due, once: the
installment row is claimed with its exact allocations (oldest bill first) before Stripe is
called, and the charge's idempotency key is the installment's, so a rerun after a crash repeats
the same request and Stripe and our ledger see one payment. Three failed installments in a row
default the plan; bills paid any other way complete it (plan_state)."""

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import domain
from services.payments import repository as repo
from services.payments.api import answer, ctx_of
from services.payments.db import bills, cards, payment_plan_bills, payment_plan_installments, payment_plans
from services.payments.plan_state import (
    complete_paid_plans,
    end_plan,
    lock_plan,
    plan_bill_ids,
    plan_info,
    plan_view,
)
from services.payments.recording import declined_payment_id, record_payment
from services.payments.schemas import AllocationIn, PaymentIn
from services.payments.service import Payments, rule_error
from shared import audit
from shared.auth import CurrentPrincipal, Principal, StaffPrincipal, ensure_client_access
from shared.events import PaymentPlanCancelled, PaymentPlanCreated, PaymentPlanDefaulted
from shared.http import ApiError, idempotent_answer, not_found, request_fingerprint
from shared.runtime import ServiceDep
from shared.validation import Day, Id, RequestModel

router = APIRouter(prefix="/v1", tags=["payment plans"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
BALANCE_MOVED = ("balance_changed", "bill_fully_paid", "bill_cancelled")
"""A charge refused because the bills changed since it was claimed: claimed again next night."""


class PlanIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    bill_ids: list[Id] = Field(min_length=1, max_length=100)
    installments: int = Field(strict=True, ge=1, le=domain.PLAN_MAX_INSTALLMENTS)
    frequency: domain.Frequency
    start_date: Day
    card_id: Id


async def _authorized_card(session: AsyncSession, practice_id: str, client_id: str, card_id: str) -> Row[Any]:
    card = (
        await session.execute(
            select(cards).where(
                cards.c.id == card_id,
                cards.c.practice_id == practice_id,
                cards.c.client_id == client_id,
                cards.c.deleted_at.is_(None),
            )
        )
    ).one_or_none()
    if card is None:
        raise not_found("card")
    if not card.authorized:
        raise ApiError(409, "card_not_authorized", "a payment plan needs a card with the client's signed authorization")
    return card


async def create_plan(session: AsyncSession, ctx: Payments, principal: Principal, client_id: str, req: PlanIn) -> Any:
    practice_id = principal.practice_id
    if len(set(req.bill_ids)) != len(req.bill_ids):
        raise ApiError(422, "duplicate_bill", "a bill appears twice in bill_ids")
    if req.start_date < dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1):
        raise ApiError(422, "start_date_in_past", "start_date must be today or later")
    await repo.lock_client(session, practice_id, client_id)
    await _authorized_card(session, practice_id, client_id, req.card_id)
    locked = await repo.lock_bills(session, req.bill_ids)
    for bill_id in req.bill_ids:
        bill = locked.get(bill_id)
        if bill is None or bill.practice_id != practice_id or bill.client_id != client_id:
            raise not_found(f"bill {bill_id}")
        if bill.status != "open":
            raise ApiError(409, "bill_not_open", f"bill {bill_id} is {bill.status}")
    on_plan = await session.scalar(
        select(payment_plan_bills.c.bill_id)
        .join(payment_plans, payment_plans.c.id == payment_plan_bills.c.plan_id)
        .where(
            payment_plan_bills.c.practice_id == practice_id,
            payment_plan_bills.c.bill_id.in_(req.bill_ids),
            payment_plans.c.status == "active",
        )
        .limit(1)
    )
    if on_plan:
        raise ApiError(409, "bill_on_plan", f"bill {on_plan} is already on an active payment plan")
    balances = await repo.balances(session, locked, "client")
    for bill_id, balance in balances.items():
        if balance.open_cents <= 0:
            raise ApiError(409, "bill_fully_paid", f"bill {bill_id} has nothing open for the client")
    total = sum(b.open_cents for b in balances.values())
    try:
        schedule = domain.plan_schedule(total, req.installments, req.frequency, req.start_date)
    except domain.PaymentRuleError as exc:
        raise rule_error(exc) from exc
    plan_id = str(uuid.uuid4())
    oldest_first = sorted(req.bill_ids, key=lambda b: (locked[b].number, locked[b].created_at))
    await session.execute(
        payment_plans.insert().values(
            id=plan_id, practice_id=practice_id, client_id=client_id, card_id=req.card_id, status="active",
            frequency=req.frequency, total_cents=total,
        )
    )  # fmt: skip
    await session.execute(
        payment_plan_bills.insert(),
        [
            {"plan_id": plan_id, "bill_id": b, "practice_id": practice_id, "position": n}
            for n, b in enumerate(oldest_first)
        ],
    )
    await session.execute(
        payment_plan_installments.insert(),
        [
            {"plan_id": plan_id, "seq": n, "practice_id": practice_id, "due_date": i.due_date,
             "amount_cents": i.amount_cents, "status": "scheduled"}
            for n, i in enumerate(schedule)
        ],
    )  # fmt: skip
    view = await plan_view(session, await lock_plan(session, plan_id))  # type: ignore[arg-type]
    await ctx.stage(session, practice_id, client_id, PaymentPlanCreated(plan=plan_info(view)))
    await audit.record_request(session, 201, view, kind="payment_plan")
    return view


@router.post("/clients/{client_id}/payment-plans", status_code=201, summary="Start a payment plan over open bills")
async def post_plan(
    client_id: str, body: PlanIn, principal: StaffPrincipal, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """The schedule adds up exactly to the bills' open balance; installments are charged by the
    nightly autopay run to the given authorized card."""
    ctx = ctx_of(service)
    await ctx.wait_for_bills(body.bill_ids)
    path = f"/v1/clients/{client_id}/payment-plans"
    fingerprint = request_fingerprint("POST", path, body.model_dump(mode="json"))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        return 201, await create_plan(session, ctx, principal, client_id, body)

    async with ctx.svc.db.transaction() as session:
        return answer(
            await idempotent_answer(
                session, ctx.svc.idempotency_table, principal.practice_id, principal.scoped_key(idempotency_key),
                fingerprint, work,
            )
        )  # fmt: skip


@router.get("/clients/{client_id}/payment-plans", summary="A client's payment plans, newest first")
async def list_plans(client_id: str, principal: CurrentPrincipal, service: ServiceDep) -> dict[str, Any]:
    ensure_client_access(principal, client_id, "client")
    q = (
        select(payment_plans)
        .where(payment_plans.c.practice_id == principal.practice_id, payment_plans.c.client_id == client_id)
        .order_by(payment_plans.c.created_at.desc(), payment_plans.c.id.desc())
    )
    async with ctx_of(service).svc.db.transaction() as session:
        items = [await plan_view(session, p) for p in (await session.execute(q)).all()]
    return {"items": items, "next_cursor": None}


async def _visible_plan(session: AsyncSession, principal: Principal, plan_id: str) -> Row[Any]:
    plan = (
        await session.execute(
            select(payment_plans).where(
                payment_plans.c.id == plan_id, payment_plans.c.practice_id == principal.practice_id
            )
        )
    ).one_or_none()
    if plan is None:
        raise not_found("payment plan")
    ensure_client_access(principal, plan.client_id, "payment plan")
    return plan


@router.get("/payment-plans/{plan_id}", summary="A payment plan and its schedule")
async def get_plan(plan_id: str, principal: CurrentPrincipal, service: ServiceDep) -> dict[str, Any]:
    async with ctx_of(service).svc.db.transaction() as session:
        return await plan_view(session, await _visible_plan(session, principal, plan_id))


@router.post("/payment-plans/{plan_id}/cancel", summary="Cancel a plan: no more installments are charged")
async def cancel_plan(plan_id: str, principal: StaffPrincipal, service: ServiceDep) -> dict[str, Any]:
    ctx = ctx_of(service)
    async with ctx.svc.db.transaction() as session:
        await _visible_plan(session, principal, plan_id)
        plan = await lock_plan(session, plan_id)
        assert plan is not None
        if plan.status != "active":
            raise ApiError(409, "plan_not_active", f"the plan is {plan.status}")
        await end_plan(session, plan_id, "cancelled")
        view = await plan_view(session, await lock_plan(session, plan_id))  # type: ignore[arg-type]
        await ctx.stage(session, principal.practice_id, plan.client_id, PaymentPlanCancelled(plan=plan_info(view)))
        await audit.record_request(session, 200, view, kind="payment_plan")
    return view


# ---- the nightly charge ---------------------------------------------------------------------


async def charge_due(ctx: Payments, practice_id: str, night: dt.date) -> list[dict[str, Any]]:
    """Charge every installment of the practice's active plans due by `night` and not charged
    yet (the caller holds the practice's autopay lock)."""
    t = payment_plan_installments
    q = (
        select(t.c.plan_id, t.c.seq)
        .join(payment_plans, payment_plans.c.id == t.c.plan_id)
        .where(
            t.c.practice_id == practice_id,
            t.c.due_date <= night,
            t.c.status.in_(("scheduled", "charging")),
            payment_plans.c.status == "active",
        )
        .order_by(payment_plans.c.created_at, t.c.plan_id, t.c.seq)
    )
    async with ctx.svc.db.transaction() as session:
        due = (await session.execute(q)).all()
    return [await _charge_installment(ctx, practice_id, plan_id, seq) for plan_id, seq in due]


async def _claim(ctx: Payments, plan_id: str, seq: int) -> tuple[Row[Any], Row[Any]] | None:
    """Fix what the installment charges, once: its amount (capped at what is open; the last one
    all that is open), spread over the plan's bills oldest first. None when nothing is due."""
    t = payment_plan_installments
    async with ctx.svc.db.transaction() as session:
        plan = await lock_plan(session, plan_id)
        inst = (await session.execute(select(t).where(t.c.plan_id == plan_id, t.c.seq == seq))).one()
        if plan is None or plan.status != "active" or inst.status not in ("scheduled", "charging"):
            return None
        if inst.status == "scheduled":
            bill_ids = await plan_bill_ids(session, plan_id)
            rows = (await session.execute(select(bills).where(bills.c.id.in_(bill_ids)))).all()
            balances = await repo.balances(session, {r.id: r for r in rows}, "client")  # record_payment rechecks
            ordered = [balances[b] for b in bill_ids if b in balances and balances[b].status != "cancelled"]
            last = seq == await session.scalar(select(t.c.seq).where(t.c.plan_id == plan_id).order_by(t.c.seq.desc()))
            amount = domain.installment_charge(inst.amount_cents, sum(b.open_cents for b in ordered), last=last)
            if amount == 0:
                await complete_paid_plans(ctx, session, plan.practice_id, bill_ids)
                return None
            spread = domain.plan_credit_use(amount, ordered).applications
            allocations = [{"bill_id": a.bill_id, "amount_cents": a.amount_cents} for a in spread]
            await session.execute(
                update(t)
                .where(t.c.plan_id == plan_id, t.c.seq == seq)
                .values(status="charging", charge={"amount_cents": amount, "allocations": allocations})
            )
            inst = (await session.execute(select(t).where(t.c.plan_id == plan_id, t.c.seq == seq))).one()
    return plan, inst


async def _charge_installment(ctx: Payments, practice_id: str, plan_id: str, seq: int) -> dict[str, Any]:
    item: dict[str, Any] = {"plan_id": plan_id, "installment": seq + 1}
    claimed = await _claim(ctx, plan_id, seq)
    if claimed is None:
        return item | {"outcome": "skipped", "reason": "nothing_due"}
    plan, inst = claimed
    total = len(await _schedule_of(ctx, plan_id))
    req = PaymentIn(
        client_id=plan.client_id, method="card", online=True, card_id=plan.card_id,
        amount_cents=inst.charge["amount_cents"],
        allocations=[AllocationIn(**a) for a in inst.charge["allocations"]],
        notes=f"payment plan installment {seq + 1} of {total} (due {inst.due_date.isoformat()})",
    )  # fmt: skip
    item |= {"client_id": plan.client_id, "amount_cents": req.amount_cents}
    try:
        status, body = await record_payment(
            ctx, Principal(practice_id, "staff"), req, f"payment-plan:{plan_id}:{seq}", autopay=True
        )
    except ApiError as exc:
        if exc.code in BALANCE_MOVED:
            await _unclaim(ctx, plan_id, seq)
            return item | {"outcome": "skipped", "reason": exc.code}
        status, body = exc.status, {"error": {"code": exc.code, "message": exc.message}}
    outcome = body.get("status", "failed") if status == 201 else "failed"
    reason = body["error"]["message"] if "error" in body else None
    payment_id = body.get("id") or declined_payment_id(reason)
    if outcome == "pending":  # Stripe did not answer: the next run reads the settled payment
        return item | {"outcome": "pending", "payment_id": payment_id}
    await _settle(ctx, plan_id, seq, paid=outcome == "succeeded", payment_id=payment_id, reason=reason)
    return item | {"outcome": "paid" if outcome == "succeeded" else "failed", "payment_id": payment_id,
                   "reason": reason}  # fmt: skip


async def _schedule_of(ctx: Payments, plan_id: str) -> list[int]:
    t = payment_plan_installments
    async with ctx.svc.db.transaction() as session:
        return list((await session.scalars(select(t.c.seq).where(t.c.plan_id == plan_id))).all())


async def _unclaim(ctx: Payments, plan_id: str, seq: int) -> None:
    t = payment_plan_installments
    async with ctx.svc.db.transaction() as session:
        await lock_plan(session, plan_id)
        await session.execute(
            update(t)
            .where(t.c.plan_id == plan_id, t.c.seq == seq, t.c.status == "charging")
            .values(status="scheduled", charge=None)
        )
        plan = await lock_plan(session, plan_id)
        if plan is not None:
            await complete_paid_plans(ctx, session, plan.practice_id, await plan_bill_ids(session, plan_id))


async def _settle(
    ctx: Payments, plan_id: str, seq: int, *, paid: bool, payment_id: str | None, reason: str | None
) -> None:
    """Note the installment's outcome once; the third failure in a row defaults the plan."""
    t = payment_plan_installments
    async with ctx.svc.db.transaction() as session:
        plan = await lock_plan(session, plan_id)
        inst = (await session.execute(select(t).where(t.c.plan_id == plan_id, t.c.seq == seq).with_for_update())).one()
        if plan is None or inst.status != "charging":
            return
        await session.execute(
            update(t)
            .where(t.c.plan_id == plan_id, t.c.seq == seq)
            .values(status="paid" if paid else "failed", payment_id=payment_id, reason=reason)
        )
        after = domain.after_installment(plan.failed_in_row, failed=not paid)
        await session.execute(
            update(payment_plans).where(payment_plans.c.id == plan_id).values(failed_in_row=after.failed_nights)
        )
        if plan.status != "active":
            return
        if after.disable:
            await end_plan(session, plan_id, "defaulted")
            view = await plan_view(session, await lock_plan(session, plan_id))  # type: ignore[arg-type]
            event = PaymentPlanDefaulted(plan=plan_info(view), failed_in_row=after.failed_nights)
            await ctx.stage(session, plan.practice_id, plan.client_id, event)
        elif paid:
            await complete_paid_plans(ctx, session, plan.practice_id, await plan_bill_ids(session, plan_id))


async def practices_with_active_plans(ctx: Payments) -> list[str]:
    async with ctx.svc.db.transaction() as session:
        return list(
            (
                await session.scalars(
                    select(payment_plans.c.practice_id).where(payment_plans.c.status == "active").distinct()
                )
            ).all()
        )
