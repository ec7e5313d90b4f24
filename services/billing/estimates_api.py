"""HTTP routes of Good Faith Estimates (CONTRACT.md, billing: Good Faith Estimates)."""

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Row, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing import repository as repo
from services.billing.api import IdempotencyKey, Limit, ShareIn, now, run_share, run_write
from services.billing.db import good_faith_estimates
from services.billing.estimates import ESTIMATES, EstimateIn, create_estimate, view
from shared.auth import CurrentPrincipal, StaffPrincipal, ensure_client_access, ensure_shared_with
from shared.http import ApiError
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1", tags=["good faith estimates"])


@router.post("/good-faith-estimates", status_code=201)
async def post_estimate(
    body: EstimateIn, request: Request, svc: ServiceDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> JSONResponse:
    """A Good Faith Estimate for a client: expected items over a period of at most 12 months.
    409 `good_faith_estimate_incomplete` names what the practice or clinician still lacks."""

    async def work(db: AsyncSession) -> tuple[int, Any]:
        row = await create_estimate(db, svc.outbox, principal.practice_id, body, now=now())
        return 201, await view(db, row)

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)


async def _get(db: AsyncSession, practice_id: str, estimate_id: str, *, lock: bool = False) -> Row[Any]:
    try:
        return await ESTIMATES.get(db, practice_id, estimate_id, lock=lock)
    except domain.RuleViolation as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


@router.get("/good-faith-estimates/{estimate_id}")
async def get_estimate(estimate_id: str, svc: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with svc.db.transaction() as db:
        row = await _get(db, principal.practice_id, estimate_id)
        ensure_client_access(principal, row.client_id, "good_faith_estimate")
        ensure_shared_with(principal, row.shared, "good_faith_estimate")
        return jsonable_encoder(await view(db, row))


@router.get("/good-faith-estimates")
async def list_estimates(
    svc: ServiceDep, principal: CurrentPrincipal, client_id: str | None = None, limit: Limit = 50,
    cursor: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Newest first; a client sees only their own."""
    if not principal.is_staff:
        if client_id and client_id != principal.client_id:
            return {"items": [], "next_cursor": None}
        client_id = principal.client_id
    t = good_faith_estimates
    query = select(t).where(t.c.practice_id == principal.practice_id).order_by(t.c.created_at.desc(), t.c.id.desc())
    if client_id:
        query = query.where(t.c.client_id == client_id)
    if not principal.is_staff:  # a client sees an estimate once it was shared with them
        query = query.where(t.c.shared)
    if cursor:
        key = repo.cursor_key(cursor, dt.datetime.fromisoformat, uuid.UUID)
        query = query.where(tuple_(t.c.created_at, t.c.id) < key)
    async with svc.db.transaction() as db:
        rows, next_cursor = repo.page((await db.execute(query.limit(limit + 1))).all(), limit,
                                      lambda r: (r.created_at, r.id))  # fmt: skip
        items = [await view(db, r) for r in rows]
    return {"items": jsonable_encoder(items), "next_cursor": next_cursor}


@router.post("/good-faith-estimates/{estimate_id}/share")
async def share_estimate(
    estimate_id: str, request: Request, svc: ServiceDep, principal: StaffPrincipal, key: IdempotencyKey = None,
    body: ShareIn | None = None,
) -> JSONResponse:  # fmt: skip
    """Email (PDF attached per the practice's setting) and portal, now (200) or at `scheduled_for` (202)."""

    async def share(db: AsyncSession, scheduled_for: dt.datetime | None) -> tuple[Row[Any], dict[str, Any]]:
        row = await _get(db, principal.practice_id, estimate_id, lock=True)
        row = await ESTIMATES.share(db, svc.outbox, row, now=now(), scheduled_for=scheduled_for)
        return row, await view(db, row)

    return await run_share(svc, request, principal, key, body, share)
