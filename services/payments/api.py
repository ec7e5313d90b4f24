"""HTTP routes for payments and refunds (thin: parse, authorize, call the use-case)."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Row, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.db import bill_applications, payments
from services.payments.recording import record_payment
from services.payments.refunds import refund_payment
from services.payments.schemas import PaymentEdit, PaymentIn, RefundIn
from services.payments.service import Payments, client_payment_view, payment_row, payment_view
from shared.auth import CurrentPrincipal, Principal, StaffPrincipal, ensure_client_access
from shared.http import (
    ApiError,
    decode_cursor,
    encode_cursor,
    idempotent_answer,
    not_found,
    request_fingerprint,
)
from shared.runtime import ServiceDep

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]

router = APIRouter(prefix="/v1", tags=["payments"])


def ctx_of(service: Any) -> Payments:
    return service.payments


def answer(result: tuple[int, Any]) -> JSONResponse:
    status, body = result
    return JSONResponse(jsonable_encoder(body), status_code=status)


@router.post("/payments", status_code=201, summary="Record a payment (cash, check, card, credit, other)")
async def create_payment(
    body: PaymentIn, principal: CurrentPrincipal, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """With `bill_id` or `allocations` it pays those bills (the excess becomes client credit);
    with neither it is a prepayment. Online card payments go through Stripe; a decline is 402."""
    return answer(await record_payment(ctx_of(service), principal, body, idempotency_key or body.idempotency_key))


async def _visible_payment(ctx: Payments, principal: Principal, payment_id: str) -> Row[Any]:
    async with ctx.svc.db.transaction() as session:
        row = (
            await session.execute(
                select(payments).where(payments.c.id == payment_id, payments.c.practice_id == principal.practice_id)
            )
        ).one_or_none()
    if row is None:
        raise not_found("payment")
    ensure_client_access(principal, row.client_id, "payment")
    return row


@router.get("/payments/{payment_id}", summary="A payment: status, allocations, refunds, Stripe ids")
async def get_payment(payment_id: str, principal: CurrentPrincipal, service: ServiceDep) -> dict[str, Any]:
    ctx = ctx_of(service)
    row = await _visible_payment(ctx, principal, payment_id)
    async with ctx.svc.db.transaction() as session:
        return client_payment_view(principal, await payment_view(ctx, session, row))


@router.get("/payments", summary="Payments, newest first")
async def list_payments(
    principal: CurrentPrincipal,
    service: ServiceDep,
    client_id: str | None = None,
    bill_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    ctx = ctx_of(service)
    if not principal.is_staff:
        if client_id and client_id != principal.client_id:
            return {"items": [], "next_cursor": None}
        client_id = principal.client_id
    q = select(payments).where(payments.c.practice_id == principal.practice_id)
    if client_id:
        q = q.where(payments.c.client_id == client_id)
    if bill_id:
        q = q.where(
            payments.c.id.in_(select(bill_applications.c.payment_id).where(bill_applications.c.bill_id == bill_id))
        )
    if cursor:
        try:
            created, last_id = decode_cursor(cursor)
            after = (dt.datetime.fromisoformat(created), str(last_id))
        except (ValueError, TypeError) as exc:
            raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc
        q = q.where(tuple_(payments.c.created_at, payments.c.id) < after)
    q = q.order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit + 1)
    async with ctx.svc.db.transaction() as session:
        rows = (await session.execute(q)).all()
        items = [client_payment_view(principal, await payment_view(ctx, session, r)) for r in rows[:limit]]
    more = len(rows) > limit
    return {
        "items": items,
        "next_cursor": encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if more else None,
    }


@router.patch("/payments/{payment_id}", summary="Correct paid_at, notes or reference (not of Stripe payments' paid_at)")
async def edit_payment(
    payment_id: str,
    body: PaymentEdit,
    principal: StaffPrincipal,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    ctx = ctx_of(service)
    await _visible_payment(ctx, principal, payment_id)
    fingerprint = request_fingerprint("PATCH", f"/v1/payments/{payment_id}", body.model_dump())

    async def work(session: AsyncSession) -> tuple[int, Any]:
        row = (await session.execute(select(payments).where(payments.c.id == payment_id).with_for_update())).one()
        changes = body.model_dump(exclude_unset=True)
        if "paid_at" in changes and (row.online or row.stripe_payment_intent_id):
            raise ApiError(409, "paid_at_from_stripe", "the date of a Stripe payment comes from Stripe")
        if changes.get("paid_at") is None:
            changes.pop("paid_at", None)
        if changes:
            await session.execute(update(payments).where(payments.c.id == payment_id).values(**changes))
        return 200, await payment_view(ctx, session, await payment_row(session, payment_id))

    async with ctx.svc.db.transaction() as session:
        result = await idempotent_answer(
            session,
            ctx.svc.idempotency_table,
            principal.practice_id,
            principal.scoped_key(idempotency_key),
            fingerprint,
            work,
        )
    return answer(result)


@router.post("/payments/{payment_id}/refunds", status_code=201, summary="Refund a payment, fully or in part")
async def create_refund(
    payment_id: str,
    body: RefundIn,
    principal: StaffPrincipal,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Never more than what is left of the payment. Online payments are refunded through
    Stripe; a payment from credit goes back to credit. Returns the refund."""
    ctx = ctx_of(service)
    await _visible_payment(ctx, principal, payment_id)
    return answer(
        await refund_payment(
            ctx, principal.practice_id, payment_id, body, principal.scoped_key(idempotency_key or body.idempotency_key)
        )
    )
