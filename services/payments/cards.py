"""Cards on file: a Stripe payment method attached to the client's Stripe customer, with the
client's authorization (who signed, when, how, which consent text). Only Stripe ids, brand,
last 4 and expiry are kept, never a card number. Autopay charges only authorized cards."""

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.api import answer, ctx_of
from services.payments.db import cards, clients
from services.payments.schemas import AutopayIn, CardIn
from services.payments.service import Payments
from services.payments.stripe_gateway import StripeDeclined, StripeUnavailable
from shared import audit
from shared.auth import CurrentPrincipal, Principal, client_facing, ensure_client_access
from shared.events import CardAuthorized, CardRemoved
from shared.http import ApiError, idempotent_answer, not_found, request_fingerprint
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1/clients/{client_id}", tags=["cards"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


CARD_STAFF_ONLY = ("stripe_payment_method_id",)


def card_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "client_id": row.client_id,
        "brand": row.brand,
        "last4": row.last4,
        "exp_month": row.exp_month,
        "exp_year": row.exp_year,
        "holder": row.holder,
        "is_default": row.is_default,
        "authorized": row.authorized,
        "authorization": row.authorization,
        "stripe_payment_method_id": row.stripe_payment_method_id,
        "created_at": row.created_at,
    }


async def stripe_customer(ctx: Payments, practice_id: str, client_id: str) -> str:
    """The client's Stripe customer, created once (the first stored id wins a race)."""
    async with ctx.svc.db.transaction() as session:
        existing = (await repo.lock_client(session, practice_id, client_id)).stripe_customer_id
    if existing:
        return str(existing)
    created = await ctx.stripe.create_customer(practice_id=practice_id, client_id=client_id)
    async with ctx.svc.db.transaction() as session:
        await session.execute(
            update(clients)
            .where(
                clients.c.practice_id == practice_id, clients.c.id == client_id, clients.c.stripe_customer_id.is_(None)
            )
            .values(stripe_customer_id=created)
        )
        return str((await repo.lock_client(session, practice_id, client_id)).stripe_customer_id)


async def store_card(ctx: Payments, principal: Principal, client_id: str, req: CardIn, key: str | None) -> Any:
    fingerprint = request_fingerprint(
        "POST", f"/v1/clients/{client_id}/cards", req.model_dump(exclude={"idempotency_key"})
    )
    try:
        customer_id = await stripe_customer(ctx, principal.practice_id, client_id)
        details = await ctx.stripe.attach_card(req.stripe_payment_method_id, customer_id)
    except StripeDeclined as exc:
        raise ApiError(402, exc.code, exc.reason) from exc
    except StripeUnavailable as exc:
        raise ApiError(503, "stripe_unavailable", "Stripe did not answer; try again") from exc

    async def work(session: AsyncSession) -> tuple[int, Any]:
        await repo.lock_client(session, principal.practice_id, client_id)
        mine = select(cards).where(
            cards.c.practice_id == principal.practice_id, cards.c.client_id == client_id, cards.c.deleted_at.is_(None)
        )
        if (await session.execute(mine.where(cards.c.stripe_payment_method_id == details.payment_method_id))).first():
            raise ApiError(409, "card_already_on_file", "this card is already on file for the client")
        first = (await session.execute(mine.limit(1))).first() is None
        if req.make_default:
            await session.execute(
                update(cards)
                .where(cards.c.practice_id == principal.practice_id, cards.c.client_id == client_id)
                .values(is_default=False)
            )
        card_id = str(uuid.uuid4())
        authorization = req.authorization.model_dump(mode="json") if req.authorization else None
        await session.execute(
            cards.insert().values(
                id=card_id,
                practice_id=principal.practice_id,
                client_id=client_id,
                stripe_payment_method_id=details.payment_method_id,
                stripe_customer_id=customer_id,
                brand=details.brand,
                last4=details.last4,
                exp_month=details.exp_month,
                exp_year=details.exp_year,
                holder=req.holder,
                is_default=first or req.make_default,
                authorized=authorization is not None,
                authorization=authorization,
            )
        )
        if authorization is not None:
            await ctx.stage(
                session,
                principal.practice_id,
                client_id,
                CardAuthorized(
                    client_id=client_id,
                    card_id=card_id,
                    brand=details.brand,
                    last4=details.last4,
                    exp_month=details.exp_month,
                    exp_year=details.exp_year,
                ),
            )
        row = (await session.execute(select(cards).where(cards.c.id == card_id))).one()
        return 201, card_view(row)

    async with ctx.svc.db.transaction() as session:
        return await idempotent_answer(
            session, ctx.svc.idempotency_table, principal.practice_id, principal.scoped_key(key), fingerprint, work
        )


@router.post("/cards", status_code=201, summary="Store a card (Stripe payment method) with its authorization")
async def add_card(
    client_id: str,
    body: CardIn,
    principal: CurrentPrincipal,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    ensure_client_access(principal, client_id, "client")
    return answer(
        await store_card(ctx_of(service), principal, client_id, body, idempotency_key or body.idempotency_key)
    )


@router.post("/card-setups", status_code=201, summary="Start adding a card: a SetupIntent for Stripe.js to confirm")
async def card_setup(client_id: str, principal: CurrentPrincipal, service: ServiceDep) -> dict[str, str]:
    """The browser confirms the returned `client_secret` with Stripe.js `confirmCardSetup` and
    then stores the resulting payment method with `POST .../cards` and its authorization."""
    ensure_client_access(principal, client_id, "client")
    ctx = ctx_of(service)
    try:
        customer_id = await stripe_customer(ctx, principal.practice_id, client_id)
        intent_id, secret = await ctx.stripe.setup_card(customer_id)
    except StripeDeclined as exc:
        raise ApiError(402, exc.code, exc.reason) from exc
    except StripeUnavailable as exc:
        raise ApiError(503, "stripe_unavailable", "Stripe did not answer; try again") from exc
    return {"setup_intent_id": intent_id, "client_secret": secret}


@router.get("/cards", summary="The client's cards on file, newest first")
async def list_cards(client_id: str, principal: CurrentPrincipal, service: ServiceDep) -> dict[str, Any]:
    ensure_client_access(principal, client_id, "client")
    q = (
        select(cards)
        .where(
            cards.c.practice_id == principal.practice_id, cards.c.client_id == client_id, cards.c.deleted_at.is_(None)
        )
        .order_by(cards.c.created_at.desc(), cards.c.id.desc())
    )
    async with ctx_of(service).svc.db.transaction() as session:
        rows = (await session.execute(q)).all()
    items = [client_facing(principal, card_view(r), CARD_STAFF_ONLY) for r in rows]
    return {"items": items, "next_cursor": None}


@router.delete("/cards/{card_id}", status_code=204, summary="Remove a card (detached in Stripe; autopay on it stops)")
async def delete_card(client_id: str, card_id: str, principal: CurrentPrincipal, service: ServiceDep) -> None:
    ensure_client_access(principal, client_id, "client")
    ctx = ctx_of(service)
    async with ctx.svc.db.transaction() as session:
        client = await repo.lock_client(session, principal.practice_id, client_id)
        row = (
            await session.execute(
                select(cards).where(
                    cards.c.id == card_id,
                    cards.c.practice_id == principal.practice_id,
                    cards.c.client_id == client_id,
                    cards.c.deleted_at.is_(None),
                )
            )
        ).one_or_none()
        if row is None:
            raise not_found("card")
        await session.execute(
            update(cards).where(cards.c.id == card_id).values(deleted_at=dt.datetime.now(dt.UTC), is_default=False)
        )
        if row.is_default:
            newest = await session.scalar(
                select(cards.c.id)
                .where(
                    cards.c.practice_id == principal.practice_id,
                    cards.c.client_id == client_id,
                    cards.c.deleted_at.is_(None),
                )
                .order_by(cards.c.created_at.desc())
                .limit(1)
            )
            if newest:
                await session.execute(update(cards).where(cards.c.id == newest).values(is_default=True))
        await ctx.stage(session, principal.practice_id, client_id, CardRemoved(client_id=client_id, card_id=card_id))
        await audit.record_request(session, 204, None)
        if client.autopay_card_id == card_id:
            await session.execute(
                update(clients)
                .where(clients.c.practice_id == principal.practice_id, clients.c.id == client_id)
                .values(autopay_card_id=None)
            )
    try:
        await ctx.stripe.detach_card(row.stripe_payment_method_id)
    except (StripeDeclined, StripeUnavailable):
        pass  # removed on our side; a card left attached in Stripe is never charged by us


@router.put("/autopay", summary="Turn autopay on (with an authorized card) or off (staff, or the client in the portal)")
async def set_autopay(
    client_id: str, body: AutopayIn, principal: CurrentPrincipal, service: ServiceDep
) -> dict[str, Any]:
    ensure_client_access(principal, client_id, "client")
    ctx = ctx_of(service)
    async with ctx.svc.db.transaction() as session:
        await repo.lock_client(session, principal.practice_id, client_id)
        card_id = None
        if body.enabled:
            if not body.card_id:
                raise ApiError(422, "validation_error", "card_id: required to enable autopay")
            card = (
                await session.execute(
                    select(cards).where(
                        cards.c.id == body.card_id,
                        cards.c.practice_id == principal.practice_id,
                        cards.c.client_id == client_id,
                        cards.c.deleted_at.is_(None),
                    )
                )
            ).one_or_none()
            if card is None:
                raise not_found("card")
            if not card.authorized:
                raise ApiError(
                    409, "card_not_authorized", "autopay needs a card with the client's signed authorization"
                )
            card_id = card.id
        await session.execute(
            update(clients)
            .where(clients.c.practice_id == principal.practice_id, clients.c.id == client_id)
            .values(autopay_card_id=card_id)
        )
        await audit.record_request(session, 200, None, kind="autopay")
    return {"client_id": client_id, "enabled": card_id is not None, "card_id": card_id}
