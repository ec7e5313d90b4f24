"""Third-party payers (Headway, Alma): their sessions are expected receivables, not client
bills. A payout is recorded with its per-session lines; reconciliation shows per session
what was expected, what came in, the difference and a flag, with totals per payout."""

import datetime as dt
import uuid
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.api import answer, ctx_of
from services.payments.db import expected_receivables, remittance_lines, remittances
from services.payments.domain import reconcile_session
from services.payments.schemas import RemittanceIn
from shared.auth import StaffPrincipal
from shared.http import ApiError, idempotent_answer, request_fingerprint
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1", tags=["third-party payers"])


def _received_at(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


@router.post("/payer-remittances", status_code=201, summary="Record a payout from Headway, Alma or another platform")
async def record_remittance(
    body: RemittanceIn,
    principal: StaffPrincipal,
    service: ServiceDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    ctx = ctx_of(service)
    key = idempotency_key or body.idempotency_key
    fingerprint = request_fingerprint("POST", "/v1/payer-remittances", body.model_dump(exclude={"idempotency_key"}))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        exists = await session.scalar(
            select(remittances.c.id).where(
                remittances.c.practice_id == principal.practice_id,
                remittances.c.payer == body.payer,
                remittances.c.reference == body.reference,
            )
        )
        if exists:
            raise ApiError(409, "remittance_exists", f"payout {body.reference} of {body.payer} is already recorded")
        remittance_id = str(uuid.uuid4())
        total = sum(line.amount_cents for line in body.lines)
        received_at = _received_at(body.received_at)
        await session.execute(
            remittances.insert().values(
                id=remittance_id,
                practice_id=principal.practice_id,
                payer=body.payer,
                reference=body.reference,
                received_at=received_at,
                total_cents=total,
            )
        )
        await session.execute(
            remittance_lines.insert(),
            [
                {
                    "remittance_id": remittance_id,
                    "practice_id": principal.practice_id,
                    "session_id": line.session_id,
                    "amount_cents": line.amount_cents,
                }
                for line in body.lines
            ],
        )
        return (
            201,
            {
                "id": remittance_id,
                "payer": body.payer,
                "reference": body.reference,
                "received_at": received_at,
                "total_cents": total,
                "lines": [line.model_dump() for line in body.lines],
            },
        )

    async with ctx.svc.db.transaction() as session:
        result = await idempotent_answer(
            session, ctx.svc.idempotency_table, principal.practice_id, principal.scoped_key(key), fingerprint, work
        )
    return answer(result)


@router.get("/payer-reconciliation", summary="Per session: expected, received, difference, flag; totals per payout")
async def payer_reconciliation(
    principal: StaffPrincipal,
    service: ServiceDep,
    payer: Annotated[str | None, Query(description="headway, alma, ...; all platforms when absent")] = None,
) -> dict[str, Any]:
    ctx = ctx_of(service)
    er, rl, rm = expected_receivables, remittance_lines, remittances
    async with ctx.svc.db.transaction() as session:
        expected_q = select(er).where(er.c.practice_id == principal.practice_id, er.c.voided.is_(False))
        lines_q = (
            select(rl.c.session_id, rl.c.amount_cents, rm.c.id, rm.c.payer, rm.c.reference, rm.c.received_at,
                   rm.c.total_cents)
            .join(rm, rm.c.id == rl.c.remittance_id)
            .where(rm.c.practice_id == principal.practice_id)
            .order_by(rm.c.received_at, rl.c.id)
        )  # fmt: skip
        if payer:
            expected_q = expected_q.where(er.c.payer == payer)
            lines_q = lines_q.where(rm.c.payer == payer)
        expected = (await session.execute(expected_q)).all()
        lines = (await session.execute(lines_q)).all()
    received: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for line in lines:
        received[line.session_id].append((line.id, line.amount_cents))
    by_session = {e.session_id: e for e in expected}
    dates = {e.session_id: e.date_of_service for e in expected}
    rows = []
    for session_id in sorted({*by_session, *received}, key=lambda s: (dates.get(s) or dt.date.min, s), reverse=True):
        e = by_session.get(session_id)
        row = reconcile_session(session_id, e.expected_cents if e else None, received.get(session_id, []))
        rows.append(
            {
                "session_id": session_id,
                "payer": e.payer if e else next(line.payer for line in lines if line.session_id == session_id),
                "client_id": e.client_id if e else None,
                "date_of_service": e.date_of_service if e else None,
                "expected_cents": row.expected_cents,
                "received_cents": row.received_cents,
                "difference_cents": row.difference_cents,
                "flag": row.flag,
                "remittance_ids": list(row.remittance_ids),
            }
        )
    payouts: dict[str, dict[str, Any]] = {}
    for line in lines:
        p = payouts.setdefault(
            line.id,
            {
                "id": line.id,
                "payer": line.payer,
                "reference": line.reference,
                "received_at": line.received_at,
                "total_cents": line.total_cents,
                "expected_cents": 0,
            },
        )
        e = by_session.get(line.session_id)
        p["expected_cents"] += e.expected_cents if e else 0
    for p in payouts.values():
        p["difference_cents"] = p["total_cents"] - p["expected_cents"]
    return {
        "payer": payer,
        "items": rows,
        "payouts": sorted(payouts.values(), key=lambda p: p["received_at"], reverse=True),
        "totals": {
            "expected_cents": sum(r["expected_cents"] or 0 for r in rows),
            "received_cents": sum(r["received_cents"] for r in rows),
        },
        "next_cursor": None,
    }
