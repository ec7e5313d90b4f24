"""Client credit: an append-only ledger per client (prepayments, overpayments, adjustments,
credit used, refunds). The balance is the sum of the entries, never a stored figure."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.api import answer, ctx_of
from services.payments.db import credit_entries
from services.payments.schemas import CreditAdjustmentIn
from shared.auth import CurrentPrincipal, StaffPrincipal, ensure_client_access
from shared.http import ApiError, decode_cursor, encode_cursor, idempotent_answer, request_fingerprint
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1/clients/{client_id}", tags=["credit"])


def entry_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "amount_cents": row.amount_cents,
        "payment_id": row.payment_id,
        "refund_id": row.refund_id,
        "bill_id": row.bill_id,
        "appointment_id": row.appointment_id,
        "reason": row.reason,
        "created_at": row.created_at,
    }


@router.get("/credit", summary="The client's credit balance and ledger entries, newest first")
async def get_credit(
    client_id: str,
    principal: CurrentPrincipal,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    ensure_client_access(principal, client_id, "client")
    t = credit_entries
    q = select(t).where(t.c.practice_id == principal.practice_id, t.c.client_id == client_id)
    if cursor:
        try:
            (seq,) = decode_cursor(cursor)
            q = q.where(t.c.seq < int(seq))
        except (ValueError, TypeError) as exc:
            raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc
    async with ctx_of(service).svc.db.transaction() as session:
        balance = await repo.credit_balance(session, principal.practice_id, client_id)
        rows = (await session.execute(q.order_by(t.c.seq.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    return {
        "client_id": client_id,
        "balance_cents": balance,
        "entries": [entry_view(r) for r in rows[:limit]],
        "next_cursor": encode_cursor(rows[limit - 1].seq) if more else None,
    }


@router.post("/credit-adjustments", status_code=201, summary="Give the client credit: a discount or reimbursement")
async def adjust_credit(
    client_id: str,
    body: CreditAdjustmentIn,
    principal: StaffPrincipal,
    service: ServiceDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    ctx = ctx_of(service)
    key = idempotency_key or body.idempotency_key
    fingerprint = request_fingerprint(
        "POST", f"/v1/clients/{client_id}/credit-adjustments", body.model_dump(exclude={"idempotency_key"})
    )

    async def work(session: AsyncSession) -> tuple[int, Any]:
        await repo.lock_client(session, principal.practice_id, client_id)
        await ctx.credit(session, principal.practice_id, client_id, body.kind, body.amount_cents, reason=body.reason)
        row = (
            await session.execute(
                select(credit_entries)
                .where(credit_entries.c.practice_id == principal.practice_id, credit_entries.c.client_id == client_id)
                .order_by(credit_entries.c.seq.desc())
                .limit(1)
            )
        ).one()
        return (
            201,
            {
                "entry": entry_view(row),
                "balance_cents": await repo.credit_balance(session, principal.practice_id, client_id),
            },
        )

    async with ctx.svc.db.transaction() as session:
        result = await idempotent_answer(
            session, ctx.svc.idempotency_table, principal.practice_id, principal.scoped_key(key), fingerprint, work
        )
    return answer(result)
