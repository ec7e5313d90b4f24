"""Autopay: charge the open client balances of clients who turned it on, each bill with the
client's authorized card on file. A scheduled job (every AUTOPAY_INTERVAL_S, one replica at a
time under an advisory lock) and an on-demand run. Safe to run twice: each bill is locked
while charged, a charge in flight already holds its amount, and the idempotency key is the
bill and what was already applied to it."""

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select, text

from services.payments import repository as repo
from services.payments.api import ctx_of
from services.payments.db import bills, cards, clients
from services.payments.recording import record_payment
from services.payments.schemas import PaymentIn
from services.payments.service import Payments
from shared.auth import Principal, StaffPrincipal
from shared.http import ApiError
from shared.runtime import ServiceDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/autopay", tags=["autopay"])
LOCK_ID = zlib.crc32(b"payments:autopay")


async def due_charges(ctx: Payments, practice_id: str | None) -> list[tuple[str, str, str, str, int, int]]:
    """(practice, client, card, bill, open cents, applied cents) for every open bill of an
    autopay client; all practices when `practice_id` is None."""
    q = (
        select(bills.c.id, bills.c.practice_id, bills.c.client_id, bills.c.client_owes_cents, clients.c.autopay_card_id)
        .join(clients, (clients.c.practice_id == bills.c.practice_id) & (clients.c.id == bills.c.client_id))
        .join(cards, (cards.c.id == clients.c.autopay_card_id) & cards.c.authorized & cards.c.deleted_at.is_(None))
        .where(bills.c.status == "open", bills.c.client_owes_cents > 0)
        .order_by(bills.c.practice_id, bills.c.client_id, bills.c.number)
    )
    if practice_id:
        q = q.where(bills.c.practice_id == practice_id)
    async with ctx.svc.db.transaction() as session:
        rows = (await session.execute(q)).all()
        applied = await repo.applied_by_bill(session, [r.id for r in rows], "client")
    due = []
    for r in rows:
        open_cents = r.client_owes_cents - applied.get(r.id, 0)
        if open_cents > 0:
            due.append((r.practice_id, r.client_id, r.autopay_card_id, r.id, open_cents, applied.get(r.id, 0)))
    return due


async def run_autopay(ctx: Payments, practice_id: str | None) -> list[dict[str, Any]]:
    results = []
    for practice, client_id, card_id, bill_id, open_cents, applied in await due_charges(ctx, practice_id):
        req = PaymentIn(
            client_id=client_id, bill_id=bill_id, method="card", online=True, card_id=card_id, amount_cents=open_cents
        )
        outcome: dict[str, Any] = {"client_id": client_id, "bill_id": bill_id, "amount_cents": open_cents}
        try:
            status, body = await record_payment(ctx, Principal(practice, "staff"), req, f"autopay:{bill_id}:{applied}")
        except ApiError as exc:
            results.append(outcome | {"outcome": "skipped", "reason": exc.code})
            continue
        charged = body.get("status", "failed") if status == 201 else "failed"
        results.append(outcome | {"outcome": charged, "payment_id": body.get("id")})
    return results


@router.post("/run", summary="Charge the open balances of autopay clients now")
async def run_now(principal: StaffPrincipal, service: ServiceDep) -> dict[str, Any]:
    return {"items": await run_autopay(ctx_of(service), principal.practice_id), "next_cursor": None}


def autopay_loop(ctx: Payments) -> Callable[[], Awaitable[None]]:
    interval = ctx.settings.autopay_interval_s

    async def loop() -> None:
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                async with ctx.svc.db.engine.connect() as conn:
                    if not await conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": LOCK_ID}):
                        continue
                    await conn.commit()
                    try:
                        results = await run_autopay(ctx, None)
                        log.info("autopay: %d bills charged or tried", len(results))
                    finally:
                        await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
                        await conn.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("autopay run failed")

    return loop
