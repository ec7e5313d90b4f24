"""Autopay: every night at the practice's autopay time (default 00:30, practice timezone) the
open client balance of each open bill of a client with autopay on is charged to an
authorized card on file through Stripe.

Never twice: one run of a practice at a time (a Postgres advisory lock held for the run, so
two replicas or two `POST /v1/autopay/run` calls take turns); each card is tried at most once
per bill and night (`autopay_attempts`, and the Stripe charge's idempotency key is that
triple); a charge in flight holds its amount on the bill, so a bill charged or being charged
is no longer open. A run that crashed is finished by the next one: it skips what was tried.

A failed night (a bill no card could pay) is recorded, staged as PaymentFailed with
`autopay=True` (notifications emails the client) and shown to staff on
`GET /v1/clients/{id}/autopay`; the third failed night in a row turns autopay off for the
client (AutopayDisabled, which notifications also emails)."""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from services.payments import domain, plans
from services.payments import repository as repo
from services.payments.api import ctx_of
from services.payments.db import (
    autopay_attempts,
    autopay_runs,
    bills,
    cards,
    clients,
    payment_plan_bills,
    payment_plans,
    practices,
)
from services.payments.recording import declined_payment_id, record_payment
from services.payments.schemas import PaymentIn
from services.payments.service import Payments
from shared.auth import CurrentPrincipal, Principal, StaffPrincipal, ensure_client_access
from shared.events import AutopayDisabled
from shared.http import ApiError
from shared.polling import every
from shared.runtime import ServiceDep
from shared.validation import Moment, RequestModel

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["autopay"])


@dataclass(frozen=True)
class PracticeAutopay:
    timezone: str = "America/New_York"
    autopay_time: dt.time = dt.time(0, 30)
    skip_insurance_pending: bool = False


async def practice_autopay(ctx: Payments, practice_id: str) -> PracticeAutopay:
    """The practice's autopay settings as billing last published them (defaults until then)."""
    async with ctx.svc.db.transaction() as session:
        row = (await session.execute(select(practices).where(practices.c.practice_id == practice_id))).first()
    if row is None:
        return PracticeAutopay()
    return PracticeAutopay(row.timezone, row.autopay_time, row.autopay_skip_insurance_pending)


@asynccontextmanager
async def practice_lock(ctx: Payments, practice_id: str, *, wait: bool) -> AsyncIterator[bool]:
    """The practice's autopay advisory lock, held on a connection of its own for the whole run
    (the charges commit in their own transactions meanwhile). Yields False when `wait` is off
    and another replica holds it."""
    async with ctx.svc.db.engine.connect() as conn:
        key = await conn.scalar(select(func.hashtextextended(f"autopay:{practice_id}", 0)))
        if wait:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            got = True
        else:
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()


async def run_night(ctx: Payments, practice_id: str, as_of: dt.datetime, *, wait: bool = True) -> dict[str, Any] | None:
    """The practice's autopay run of the night due at `as_of`; None if another replica is
    running it (only when `wait` is off)."""
    settings = await practice_autopay(ctx, practice_id)
    night = domain.autopay_night(as_of, settings.timezone, settings.autopay_time)
    async with practice_lock(ctx, practice_id, wait=wait) as got:
        if not got:
            return None
        async with ctx.svc.db.transaction() as session:
            await session.execute(
                insert(autopay_runs).values(practice_id=practice_id, night=night).on_conflict_do_nothing()
            )
        items = await _charge_night(ctx, practice_id, night, settings)
        installments = await plans.charge_due(ctx, practice_id, night)
        result = {"night": night.isoformat(), "items": items, "plan_installments": installments, "next_cursor": None}
        async with ctx.svc.db.transaction() as session:
            await session.execute(
                update(autopay_runs)
                .where(autopay_runs.c.practice_id == practice_id, autopay_runs.c.night == night)
                .values(finished_at=func.now(), result=result)
            )
    return result


async def due_bills(ctx: Payments, practice_id: str, settings: PracticeAutopay) -> list[dict[str, Any]]:
    """The open bills of the practice's autopay clients with something left for the client to
    pay (after every payment applied or in flight), oldest bill first per client; with the
    practice's rule, not those whose insurance share is not fully paid yet."""
    q = (
        select(bills.c.id, bills.c.client_id, bills.c.client_owes_cents, bills.c.insurance_owes_cents, bills.c.party)
        .join(clients, (clients.c.practice_id == bills.c.practice_id) & (clients.c.id == bills.c.client_id))
        .join(cards, (cards.c.id == clients.c.autopay_card_id) & cards.c.authorized & cards.c.deleted_at.is_(None))
        .where(bills.c.practice_id == practice_id, bills.c.status == "open", bills.c.client_owes_cents > 0)
        .where(bills.c.id.not_in(_on_active_plans(practice_id)))
        .order_by(bills.c.client_id, bills.c.number)
    )
    async with ctx.svc.db.transaction() as session:
        rows = (await session.execute(q)).all()
        applied = await repo.applied_by_bill(session, [r.id for r in rows], "client")
        by_insurer = await repo.applied_by_bill(session, [r.id for r in rows], "insurance")
    due = []
    for r in rows:
        open_cents = r.client_owes_cents - applied.get(r.id, 0)
        insurance_pending = r.insurance_owes_cents - by_insurer.get(r.id, 0) > 0
        if open_cents > 0 and not (settings.skip_insurance_pending and insurance_pending):
            due.append({"client_id": r.client_id, "bill_id": r.id, "open_cents": open_cents, "party": r.party})
    return due


def _on_active_plans(practice_id: str) -> Any:
    """Bills an active payment plan pays: its installments charge them, plain autopay does not."""
    t = payment_plan_bills
    return (
        select(t.c.bill_id)
        .join(payment_plans, payment_plans.c.id == t.c.plan_id)
        .where(t.c.practice_id == practice_id, payment_plans.c.status == "active")
    )


async def _charge_night(
    ctx: Payments, practice_id: str, night: dt.date, settings: PracticeAutopay
) -> list[dict[str, Any]]:
    by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bill in await due_bills(ctx, practice_id, settings):
        by_client[bill["client_id"]].append(bill)
    items = []
    for client_id, client_bills in by_client.items():
        order, authorized = await _cards(ctx, practice_id, client_id)
        outcomes = [
            await _charge_bill(ctx, practice_id, night, bill, domain.cards_for_bill(bill["party"], order, authorized))
            for bill in client_bills
        ]
        items.extend(outcomes)
        await _close_night(ctx, practice_id, client_id, night, failed=any(o["outcome"] == "failed" for o in outcomes))
    return items


async def _card_order(ctx: Payments, practice_id: str, client_id: str) -> list[str]:
    return (await _cards(ctx, practice_id, client_id))[0]


async def _cards(ctx: Payments, practice_id: str, client_id: str) -> tuple[list[str], list[domain.AutopayCard]]:
    """The client's autopay card order, and every authorized card on file (a guardian's among them)."""
    async with ctx.svc.db.transaction() as session:
        client = (
            await session.execute(
                select(clients).where(clients.c.practice_id == practice_id, clients.c.id == client_id)
            )
        ).one()
        authorized = (
            await session.execute(
                select(cards.c.id, cards.c.holder, cards.c.is_default).where(
                    cards.c.practice_id == practice_id,
                    cards.c.client_id == client_id,
                    cards.c.authorized,
                    cards.c.deleted_at.is_(None),
                )
            )
        ).all()
    known = [domain.AutopayCard(c.id, c.holder, c.is_default) for c in authorized]
    return domain.autopay_cards(client.autopay_card_id, known, is_minor=client.is_minor), known


async def _charge_bill(
    ctx: Payments, practice_id: str, night: dt.date, bill: dict[str, Any], order: list[str]
) -> dict[str, Any]:
    """Try the cards in order until one pays; a card already tried on this bill tonight is not
    tried again (a rerun of the night finishes what a crashed run left)."""
    async with ctx.svc.db.transaction() as session:
        tried = {
            r.card_id: r
            for r in (
                await session.execute(
                    select(autopay_attempts).where(
                        autopay_attempts.c.practice_id == practice_id,
                        autopay_attempts.c.night == night,
                        autopay_attempts.c.bill_id == bill["bill_id"],
                    )
                )
            ).all()
        }
    outcome: dict[str, Any] = {**bill, "amount_cents": bill["open_cents"], "outcome": "failed", "reason": None}
    if not order:  # a split bill whose party has no authorized card of its own: never the client's card
        return outcome | {"outcome": "skipped", "reason": "no_card_for_party"}
    for card_id in order:
        if card_id in tried:
            outcome |= {"outcome": "failed", "reason": tried[card_id].reason, "card_id": card_id, "retried": False}
            continue
        req = PaymentIn(
            client_id=bill["client_id"], bill_id=bill["bill_id"], method="card", online=True, card_id=card_id,
            amount_cents=bill["open_cents"], notes=f"autopay, night of {night.isoformat()}",
        )  # fmt: skip
        key = f"autopay:{night.isoformat()}:{bill['bill_id']}:{card_id}"
        try:
            status, body = await record_payment(ctx, Principal(practice_id, "staff"), req, key, autopay=True)
        except ApiError as exc:
            return outcome | {"outcome": "skipped", "reason": exc.code, "card_id": card_id}
        charged = body.get("status", "failed") if status == 201 else "failed"
        reason = body["error"]["message"] if "error" in body else None
        payment_id = body.get("id") or declined_payment_id(reason)
        async with ctx.svc.db.transaction() as session:
            attempt = {
                "practice_id": practice_id, "night": night, "client_id": bill["client_id"], "bill_id": bill["bill_id"],
                "card_id": card_id, "payment_id": payment_id, "amount_cents": bill["open_cents"], "outcome": charged,
                "reason": reason,
            }  # fmt: skip
            await session.execute(insert(autopay_attempts).values(attempt).on_conflict_do_nothing())
        outcome |= {"outcome": charged, "reason": reason, "card_id": card_id, "payment_id": payment_id}
        if charged != "failed":
            return outcome
    return outcome


async def _close_night(ctx: Payments, practice_id: str, client_id: str, night: dt.date, *, failed: bool) -> None:
    """Count the client's night once: a failed one adds to the run of failures, a good one ends
    it; the AUTOPAY_MAX_FAILED_NIGHTS-th failure in a row turns autopay off."""
    async with ctx.svc.db.transaction() as session:
        client = await repo.lock_client(session, practice_id, client_id)
        if client.autopay_card_id is None or (client.autopay_last_night and client.autopay_last_night >= night):
            return
        after = domain.after_night(client.autopay_failed_nights, failed=failed)
        values: dict[str, Any] = {"autopay_failed_nights": after.failed_nights, "autopay_last_night": night}
        if after.disable:
            values["autopay_card_id"] = None
            disabled = AutopayDisabled(
                client_id=client_id,
                card_id=client.autopay_card_id,
                reason=f"the automatic payment failed {after.failed_nights} nights in a row",
                failed_nights=after.failed_nights,
            )
            await ctx.stage(session, practice_id, client_id, disabled)
            log.info("autopay turned off after %d failed nights", after.failed_nights)
        await session.execute(
            update(clients).where(clients.c.practice_id == practice_id, clients.c.id == client_id).values(**values)
        )


class AutopayRunIn(RequestModel):
    as_of: Moment | None = None


@router.post("/autopay/run", summary="Run the practice's autopay now, as the night due at `as_of` (default now)")
async def run_now(principal: StaffPrincipal, service: ServiceDep, body: AutopayRunIn | None = None) -> dict[str, Any]:
    as_of = body.as_of if body and body.as_of else dt.datetime.now(dt.UTC)
    result = await run_night(ctx_of(service), principal.practice_id, as_of, wait=True)
    assert result is not None
    return result


@router.get("/clients/{client_id}/autopay", summary="Autopay state of a client and its recent charges")
async def get_autopay(client_id: str, principal: CurrentPrincipal, service: ServiceDep) -> dict[str, Any]:
    ensure_client_access(principal, client_id, "client")
    async with ctx_of(service).svc.db.transaction() as session:
        client = (
            await session.execute(
                select(clients).where(clients.c.practice_id == principal.practice_id, clients.c.id == client_id)
            )
        ).first()
        attempts = (
            await session.execute(
                select(autopay_attempts)
                .where(
                    autopay_attempts.c.practice_id == principal.practice_id, autopay_attempts.c.client_id == client_id
                )
                .order_by(autopay_attempts.c.created_at.desc(), autopay_attempts.c.id.desc())
                .limit(50)
            )
        ).all()
    return {
        "client_id": client_id,
        "enabled": bool(client and client.autopay_card_id),
        "card_id": client.autopay_card_id if client else None,
        "failed_nights": client.autopay_failed_nights if client else 0,
        "last_night": client.autopay_last_night if client else None,
        "attempts": [_attempt_view(a) for a in attempts],
    }


def _attempt_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "night": row.night, "bill_id": row.bill_id, "card_id": row.card_id, "payment_id": row.payment_id,
        "amount_cents": row.amount_cents, "outcome": row.outcome, "reason": row.reason, "at": row.created_at,
    }  # fmt: skip


async def run_due_nights(ctx: Payments, now: dt.datetime) -> None:
    """Each practice with autopay clients whose night is due and not finished gets its run."""
    async with ctx.svc.db.transaction() as session:
        practice_ids = (
            await session.scalars(
                select(clients.c.practice_id).where(clients.c.autopay_card_id.is_not(None)).distinct()
            )
        ).all()
    for practice_id in sorted({*practice_ids, *await plans.practices_with_active_plans(ctx)}):
        settings = await practice_autopay(ctx, practice_id)
        night = domain.autopay_night(now, settings.timezone, settings.autopay_time)
        async with ctx.svc.db.transaction() as session:
            finished = await session.scalar(
                select(autopay_runs.c.finished_at).where(
                    autopay_runs.c.practice_id == practice_id, autopay_runs.c.night == night
                )
            )
        if finished is None:
            try:
                await run_night(ctx, practice_id, now, wait=False)
            except Exception:
                log.exception("autopay run of a practice failed; the next check finishes it")


def autopay_loop(ctx: Payments) -> Callable[[], Awaitable[None]]:
    """Checks every AUTOPAY_INTERVAL_S which practices' nights are due (0 = only on request)."""
    interval = ctx.settings.autopay_interval_s

    async def loop() -> None:
        if interval <= 0:
            return
        await every(
            interval, lambda: run_due_nights(ctx, dt.datetime.now(dt.UTC)), log=log, failure="autopay check failed",
            run_at_start=False,
        )  # fmt: skip

    return loop
