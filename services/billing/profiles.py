"""A client's billing profile (`GET/PUT /v1/clients/{client_id}/billing-profile`): the
defaults a new bill takes for that client (responsibility, copay or coinsurance), whether
superbills are made automatically, and whether shares go by email or to the portal only.
`GET /v1/clients` and `GET /v1/clinicians` list the practice's clients and clinicians (the web
console's pickers)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.api import IdempotencyKey, run_write
from services.billing.db import client_profiles, clients, clinicians
from services.billing.practice import BillingProfile
from services.billing.repository import load_profile
from shared.auth import StaffPrincipal
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1", tags=["billing profiles"])


@router.get("/clients")
async def list_clients(
    svc: ServiceDep, principal: StaffPrincipal, limit: Annotated[int, Query(ge=1, le=1000)] = 500
) -> dict[str, Any]:
    """The practice's clients as scheduling described them, by last then first name."""
    q = (
        select(clients.c.id, clients.c.first_name, clients.c.last_name, clients.c.data["email"].astext.label("email"))
        .where(clients.c.practice_id == principal.practice_id)
        .order_by(clients.c.last_name, clients.c.first_name, clients.c.id)
        .limit(limit)
    )
    async with svc.db.transaction() as db:
        rows = (await db.execute(q)).all()
    items = [{"id": r.id, "first_name": r.first_name, "last_name": r.last_name, "email": r.email} for r in rows]
    return {"items": items, "next_cursor": None}


@router.get("/clinicians")
async def list_clinicians(svc: ServiceDep, principal: StaffPrincipal) -> dict[str, Any]:
    """The practice's clinicians as scheduling described them (a Good Faith Estimate names one)."""
    q = select(clinicians.c.id, clinicians.c.data).where(clinicians.c.practice_id == principal.practice_id)
    async with svc.db.transaction() as db:
        rows = (await db.execute(q.order_by(clinicians.c.id).limit(1000))).all()
    fields = ("first_name", "last_name", "credentials", "npi")
    items = [{"id": r.id} | {f: r.data.get(f) for f in fields} for r in rows]
    items.sort(key=lambda c: (c["last_name"] or "", c["first_name"] or "", c["id"]))
    return {"items": items, "next_cursor": None}


@router.get("/clients/{client_id}/billing-profile", response_model=BillingProfile)
async def get_profile(client_id: str, svc: ServiceDep, principal: StaffPrincipal) -> BillingProfile:
    async with svc.db.transaction() as db:
        return await load_profile(db, principal.practice_id, client_id)


@router.put("/clients/{client_id}/billing-profile", response_model=BillingProfile)
async def put_profile(
    client_id: str,
    body: BillingProfile,
    request: Request,
    svc: ServiceDep,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Replace the client's profile; it applies to bills created afterwards."""

    async def work(db: AsyncSession) -> tuple[int, Any]:
        data = body.model_dump(mode="json")
        stmt = insert(client_profiles).values(practice_id=principal.practice_id, client_id=client_id, data=data)
        await db.execute(
            stmt.on_conflict_do_update(
                index_elements=[client_profiles.c.practice_id, client_profiles.c.client_id],
                set_={"data": data, "updated_at": func.now()},
            )
        )
        return 200, data

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)
