"""A payment plan's state and public view: read from its rows, ended once its bills are paid
(by the plan or any other way). Used by the plan routes and the nightly charge, and by every
payment that settles (recording) or bill that changes (handlers), so a plan completes however
its bills were paid."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, any_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.db import cards, payment_plan_bills, payment_plan_installments, payment_plans
from services.payments.service import Payments
from shared.events import PaymentPlanCompleted, PaymentPlanInfo, PlanInstallment

SHOWN_STATUS = {"charging": "scheduled"}
"""A claimed charge whose outcome is not known yet is still `scheduled` to the outside."""


async def plan_bill_ids(session: AsyncSession, plan_id: str) -> list[str]:
    t = payment_plan_bills
    return list((await session.scalars(select(t.c.bill_id).where(t.c.plan_id == plan_id).order_by(t.c.position))).all())


async def plan_view(session: AsyncSession, plan: Row[Any]) -> dict[str, Any]:
    """`{id, client_id, status, total_cents, bill_ids, schedule[...]}` plus the plan's terms."""
    t = payment_plan_installments
    rows = (await session.execute(select(t).where(t.c.plan_id == plan.id).order_by(t.c.seq))).all()
    card = (await session.execute(select(cards.c.brand, cards.c.last4).where(cards.c.id == plan.card_id))).first()
    return {
        "id": plan.id,
        "client_id": plan.client_id,
        "status": plan.status,
        "total_cents": plan.total_cents,
        "bill_ids": await plan_bill_ids(session, plan.id),
        "frequency": plan.frequency,
        "installments": len(rows),
        "card_id": plan.card_id,
        "card_brand": card.brand if card else None,
        "card_last4": card.last4 if card else None,
        "failed_in_row": plan.failed_in_row,
        "created_at": plan.created_at,
        "ended_at": plan.ended_at,
        "schedule": [
            {
                "due_date": r.due_date,
                "amount_cents": r.amount_cents,
                "status": SHOWN_STATUS.get(r.status, r.status),
                "payment_id": r.payment_id,
            }
            for r in rows
        ],
    }


def plan_info(view: dict[str, Any]) -> PaymentPlanInfo:
    return PaymentPlanInfo(
        id=view["id"],
        client_id=view["client_id"],
        status=view["status"],
        total_cents=view["total_cents"],
        bill_ids=view["bill_ids"],
        frequency=view["frequency"],
        card_brand=view["card_brand"],
        card_last4=view["card_last4"],
        schedule=[PlanInstallment.model_validate(i) for i in view["schedule"]],
    )


async def lock_plan(session: AsyncSession, plan_id: str) -> Row[Any] | None:
    return (
        await session.execute(select(payment_plans).where(payment_plans.c.id == plan_id).with_for_update())
    ).one_or_none()


async def end_plan(session: AsyncSession, plan_id: str, status: str) -> None:
    """The plan ends: installments not yet charged are skipped (a claimed charge settles on its own)."""
    await session.execute(
        update(payment_plans).where(payment_plans.c.id == plan_id).values(status=status, ended_at=func.now())
    )
    t = payment_plan_installments
    await session.execute(update(t).where(t.c.plan_id == plan_id, t.c.status == "scheduled").values(status="skipped"))


_ACTIVE_PLANS_OF_BILLS = (
    select(payment_plan_bills.c.plan_id)
    .join(payment_plans, payment_plans.c.id == payment_plan_bills.c.plan_id)
    .where(
        payment_plan_bills.c.practice_id == bindparam("practice_id"),
        payment_plan_bills.c.bill_id == any_(repo.IDS),
        payment_plans.c.status == "active",
    )
    .distinct()
    .order_by(payment_plan_bills.c.plan_id)
)
"""Built once: every settled payment asks it (nearly always to find none)."""


async def complete_paid_plans(ctx: Payments, session: AsyncSession, practice_id: str, bill_ids: Iterable[str]) -> None:
    """Each active plan over these bills whose bills are all paid (money in, net of refunds;
    cancelled bills owe nothing) becomes `completed`, its remaining installments `skipped`."""
    ids = list(bill_ids)
    if not ids:
        return
    plan_ids = (await session.scalars(_ACTIVE_PLANS_OF_BILLS, {"practice_id": practice_id, "ids": ids})).all()
    for plan_id in plan_ids:
        plan = await lock_plan(session, plan_id)
        if plan is None or plan.status != "active":
            continue
        open_now = await repo.settled_open(session, await plan_bill_ids(session, plan_id), "client")
        if any(cents > 0 for cents in open_now.values()):
            continue
        await end_plan(session, plan_id, "completed")
        view = await plan_view(session, await lock_plan(session, plan_id))  # type: ignore[arg-type]
        await ctx.stage(session, practice_id, plan.client_id, PaymentPlanCompleted(plan=plan_info(view)))
