"""HTTP routes for statements, a client's Documents tab and the balance check."""

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import BigInteger, Row, String, cast, literal, null, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import check, domain, statements, superbills
from services.billing import repository as repo
from services.billing.api import IdempotencyKey, Limit, ShareIn, now, run_share, run_write
from services.billing.db import bills, good_faith_estimates, sessions
from services.billing.db import statements as statements_table
from services.billing.db import superbills as superbills_table
from services.billing.issued import IssuedKind
from shared.auth import CurrentPrincipal, Principal, StaffPrincipal, ensure_client_access, ensure_shared_with
from shared.http import ApiError, encode_cursor
from shared.runtime import Service, ServiceDep
from shared.validation import Day, Id, RequestModel, Text

router = APIRouter(prefix="/v1", tags=["statements and documents"])


class StatementIn(RequestModel):
    client_id: Id
    start_date: Day
    end_date: Day
    comments: Text | None = None


@router.post("/statements", status_code=201)
async def create_statement(
    body: StatementIn, request: Request, svc: ServiceDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> JSONResponse:
    """Opening balance, every charge, payment, refund and cancellation in the range, closing
    balance, and the aging of what is still owed at the end date."""

    async def work(db: AsyncSession) -> tuple[int, Any]:
        row = await statements.create_statement(
            db, svc.outbox, principal.practice_id, client_id=body.client_id, start=body.start_date,
            end=body.end_date, comments=body.comments, now=now(),
        )  # fmt: skip
        return 201, statements.STATEMENTS.view(row)

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)


@router.get("/statements/{statement_id}")
async def get_statement(statement_id: str, svc: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await _get_issued(statements.STATEMENTS, statement_id, svc, principal)


@router.post("/statements/{statement_id}/share")
async def share_statement(
    statement_id: str,
    request: Request,
    svc: ServiceDep,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
    body: ShareIn | None = None,
) -> JSONResponse:
    return await _share_issued(statements.STATEMENTS, statement_id, request, svc, principal, key, body)


class SuperbillIn(RequestModel):
    client_id: Id
    session_ids: list[Id] | None = Field(default=None, min_length=1)
    start_date: Day | None = None
    end_date: Day | None = None
    pay_to: superbills.PayTo = "client"


@router.post("/superbills", status_code=201)
async def create_superbill(
    body: SuperbillIn, request: Request, svc: ServiceDep, principal: StaffPrincipal, key: IdempotencyKey = None
) -> JSONResponse:
    """From `session_ids`, or the client's attended sessions from `start_date` to `end_date`.
    409 `superbill_incomplete` names every CMS-1500 field missing (practice NPI, tax id, ...)."""

    async def work(db: AsyncSession) -> tuple[int, Any]:
        row = await superbills.create_superbill(
            db, svc.outbox, principal.practice_id, client_id=body.client_id, session_ids=body.session_ids,
            start=body.start_date, end=body.end_date, pay_to=body.pay_to, now=now(),
        )  # fmt: skip
        return 201, superbills.SUPERBILLS.view(row)

    return await run_write(svc, request, principal, key, body.model_dump(mode="json"), work)


@router.get("/superbills/{superbill_id}")
async def get_superbill(superbill_id: str, svc: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await _get_issued(superbills.SUPERBILLS, superbill_id, svc, principal)


@router.post("/superbills/{superbill_id}/share")
async def share_superbill(
    superbill_id: str,
    request: Request,
    svc: ServiceDep,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
    body: ShareIn | None = None,
) -> JSONResponse:
    return await _share_issued(superbills.SUPERBILLS, superbill_id, request, svc, principal, key, body)


async def _get_issued(kind: IssuedKind, doc_id: str, svc: Service, principal: Principal) -> dict[str, Any]:
    """GET of a statement or superbill: 404 unless it is this practice's and, for a client, theirs."""
    async with svc.db.transaction() as db:
        try:
            row = await kind.get(db, principal.practice_id, doc_id)
        except domain.RuleViolation as exc:
            raise ApiError(exc.status, exc.code, exc.message) from exc
    ensure_client_access(principal, row.client_id, kind.name)
    ensure_shared_with(principal, row.shared, kind.name)
    return jsonable_encoder(kind.view(row))


async def _share_issued(
    kind: IssuedKind, doc_id: str, request: Request, svc: Service, principal: Principal, key: str | None,
    body: ShareIn | None,
) -> JSONResponse:  # fmt: skip
    """Share of a statement or superbill: now (200) or at `scheduled_for` (202), as for bills."""

    async def share(db: AsyncSession, scheduled_for: dt.datetime | None) -> tuple[Row[Any], dict[str, Any]]:
        row = await kind.get(db, principal.practice_id, doc_id, lock=True)
        row = await kind.share(db, svc.outbox, row, now=now(), scheduled_for=scheduled_for)
        return row, kind.view(row)

    return await run_share(svc, request, principal, key, body, share)


@router.get("/clients/{client_id}/documents")
async def client_documents(
    client_id: str, svc: ServiceDep, principal: CurrentPrincipal, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The client's Billing > Documents tab: bills, statements, superbills and Good Faith
    Estimates, newest first;
    and the sessions a third-party platform pays (kind `third_party_session`, status
    `paid_by_payer`, `payer` naming the platform), which are never billed to the client."""
    ensure_client_access(principal, client_id, "client")
    b, s, sb, se, g = bills, statements_table, superbills_table, sessions, good_faith_estimates
    unshared_visible = principal.is_staff  # a client sees only what staff shared with them
    no_payer = cast(null(), String).label("payer")
    docs = union_all(
        select(literal("bill").label("kind"), cast(b.c.id, String).label("id"), b.c.number, b.c.status, b.c.issued_on,
               b.c.total_cents, b.c.document_id, b.c.shared, b.c.created_at, no_payer)
        .where(b.c.practice_id == principal.practice_id, b.c.client_id == client_id, b.c.shared | unshared_visible),
        select(literal("statement").label("kind"), cast(s.c.id, String).label("id"), s.c.number,
               literal("issued").label("status"), s.c.issued_on, cast(null(), BigInteger).label("total_cents"),
               s.c.document_id, s.c.shared, s.c.created_at, no_payer)
        .where(s.c.practice_id == principal.practice_id, s.c.client_id == client_id, s.c.shared | unshared_visible),
        select(literal("superbill").label("kind"), cast(sb.c.id, String).label("id"), sb.c.number,
               literal("issued").label("status"), sb.c.issued_on,
               sb.c.source["body"]["total_fee_cents"].as_integer().label("total_cents"),
               sb.c.document_id, sb.c.shared, sb.c.created_at, no_payer)
        .where(sb.c.practice_id == principal.practice_id, sb.c.client_id == client_id,
               sb.c.shared | unshared_visible),
        select(literal("good_faith_estimate").label("kind"), cast(g.c.id, String).label("id"), g.c.number,
               literal("issued").label("status"), g.c.issued_on, g.c.total_cents, g.c.document_id, g.c.shared,
               g.c.created_at, no_payer)
        .where(g.c.practice_id == principal.practice_id, g.c.client_id == client_id, g.c.shared | unshared_visible),
        select(literal("third_party_session").label("kind"), se.c.id, cast(null(), BigInteger).label("number"),
               literal("paid_by_payer").label("status"), se.c.date_of_service.label("issued_on"),
               se.c.services_cents.label("total_cents"), cast(null(), String).label("document_id"),
               literal(False).label("shared"), se.c.created_at, se.c.data["payer"].astext.label("payer"))
        .where(se.c.practice_id == principal.practice_id, se.c.client_id == client_id, se.c.bill_id.is_(None),
               ~se.c.voided, se.c.data.is_not(None), ~repo.client_billed(svc.settings.platforms())),
    ).subquery()  # fmt: skip
    query = select(docs).order_by(docs.c.created_at.desc(), docs.c.id.desc()).limit(limit + 1)
    if cursor:
        created, doc_id = repo.cursor_key(cursor, dt.datetime.fromisoformat, str)
        query = query.where(tuple_(docs.c.created_at, docs.c.id) < (created, doc_id))
    async with svc.db.transaction() as db:
        rows = (await db.execute(query)).all()
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    items = [
        {
            "kind": r.kind,
            "id": r.id,
            "number": r.number,
            "status": r.status,
            "issued_on": r.issued_on,
            "total_cents": r.total_cents,
            "document_id": r.document_id,
            "shared": r.shared,
            "created_at": r.created_at,
        }
        | ({"payer": r.payer} if r.payer else {})
        for r in rows[:limit]
    ]
    return {"items": jsonable_encoder(items), "next_cursor": next_cursor}


@router.get("/checks/balances")
async def check_balances(svc: ServiceDep, principal: StaffPrincipal) -> dict[str, Any]:
    """Recompute this practice's bill balances from the facts and report any drift."""
    async with svc.db.transaction() as db:
        checked, drift = await check.check_balances(db, principal.practice_id)
    return check.report(checked, drift)
