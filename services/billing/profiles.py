"""A client's billing profile (`GET/PUT /v1/clients/{client_id}/billing-profile`): the
defaults a new bill takes for that client (responsibility, copay or coinsurance), whether
superbills are made automatically, and whether shares go by email or to the portal only."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing.api import IdempotencyKey, run_write
from services.billing.db import client_profiles
from services.billing.practice import BillingProfile
from services.billing.repository import load_profile
from shared.auth import StaffPrincipal
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1", tags=["billing profiles"])


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
