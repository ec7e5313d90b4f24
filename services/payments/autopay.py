"""Autopay: charge the open client balances of clients who turned it on, each bill with the
client's authorized card on file. Safe to run twice or on several replicas: each bill is
locked while charged and a charge in flight already holds its amount."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from services.payments import repository as repo
from services.payments.api import ctx_of
from services.payments.db import bills, cards, clients
from services.payments.recording import record_payment
from services.payments.schemas import PaymentIn
from services.payments.service import Payments
from shared.auth import Principal, StaffPrincipal
from shared.http import ApiError
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1/autopay", tags=["autopay"])


async def due_charges(ctx: Payments, practice_id: str) -> list[tuple[str, str, str, int, int]]:
    """(client, card, bill, open cents, applied cents) for every open bill of an autopay client."""
    async with ctx.svc.db.transaction() as session:
        rows = (
            await session.execute(
                select(bills.c.id, bills.c.client_id, bills.c.client_owes_cents, clients.c.autopay_card_id)
                .join(clients, (clients.c.practice_id == bills.c.practice_id) & (clients.c.id == bills.c.client_id))
                .join(
                    cards, (cards.c.id == clients.c.autopay_card_id) & cards.c.authorized & cards.c.deleted_at.is_(None)
                )
                .where(bills.c.practice_id == practice_id, bills.c.status == "open", bills.c.client_owes_cents > 0)
                .order_by(bills.c.client_id, bills.c.number)
            )
        ).all()
        applied = await repo.applied_by_bill(session, [r.id for r in rows], "client")
    due = []
    for r in rows:
        open_cents = r.client_owes_cents - applied.get(r.id, 0)
        if open_cents > 0:
            due.append((r.client_id, r.autopay_card_id, r.id, open_cents, applied.get(r.id, 0)))
    return due


@router.post("/run", summary="Charge the open balances of autopay clients now")
async def run_autopay(principal: StaffPrincipal, service: ServiceDep) -> dict[str, Any]:
    ctx = ctx_of(service)
    results = []
    for client_id, card_id, bill_id, open_cents, applied in await due_charges(ctx, principal.practice_id):
        req = PaymentIn(
            client_id=client_id, bill_id=bill_id, method="card", online=True, card_id=card_id, amount_cents=open_cents
        )
        key = f"autopay:{bill_id}:{applied}"
        try:
            status, body = await record_payment(ctx, Principal(principal.practice_id, "staff"), req, key)
        except ApiError as exc:
            results.append({"client_id": client_id, "bill_id": bill_id, "outcome": "skipped", "reason": exc.code})
            continue
        outcome = body.get("status", "failed") if status == 201 else "failed"
        results.append({"client_id": client_id, "bill_id": bill_id, "outcome": outcome, "amount_cents": open_cents,
                        "payment_id": body.get("id")})  # fmt: skip
    return {"items": results, "next_cursor": None}
