"""HTTP routes, thin: the reports and the journal, as JSON or CSV, for the practice's staff only."""

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from services.reports import domain, queries
from shared.auth import StaffPrincipal
from shared.http import ApiError, decode_cursor, encode_cursor
from shared.runtime import Service, ServiceDep

router = APIRouter(prefix="/v1", tags=["reports"])

Day = Annotated[dt.date | None, Query()]
Format = Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")]


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def csv_response(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def check_range(start: dt.date | None, end: dt.date | None) -> None:
    if start and end and start > end:
        raise ApiError(422, "invalid_range", "from is after to")


@router.get("/reports/aging", summary="Open balances by days past due, per client and by payer")
async def aging(
    request: Request, principal: StaffPrincipal, svc: ServiceDep, as_of: Day = None, fmt: Format = None
) -> Response:
    async with svc.db.transaction() as session:
        report = await queries.aging(session, principal.practice_id, as_of)
    if not wants_csv(request, fmt):
        return JSONResponse(report)
    rows = ([c["client_id"], c["client_name"], *c["buckets"].values(), c["total_cents"]] for c in report["clients"])
    return csv_response(["client_id", "client_name", *domain.BUCKETS, "total_cents"], rows, f"aging-{report['as_of']}")


@router.get("/reports/payments", summary="Payments, refunds and net by method, day or clinician")
async def payments(
    request: Request,
    principal: StaffPrincipal,
    svc: ServiceDep,
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    group_by: queries.PaymentsGroup = "method",
    fmt: Format = None,
) -> Response:
    check_range(start, end)
    async with svc.db.transaction() as session:
        report = await queries.payments(session, principal.practice_id, start, end, group_by)
    if not wants_csv(request, fmt):
        return JSONResponse(report)
    cols = ["key", "payments_cents", "refunds_cents", "net_cents", "count"]
    return csv_response(cols, ([r[c] for c in cols] for r in report["rows"]), f"payments-by-{group_by}")


@router.get("/reports/revenue", summary="Billed, collected, adjusted and outstanding by clinician, code or month")
async def revenue(
    request: Request,
    principal: StaffPrincipal,
    svc: ServiceDep,
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    group_by: queries.RevenueGroup = "month",
    fmt: Format = None,
) -> Response:
    check_range(start, end)
    async with svc.db.transaction() as session:
        report = await queries.revenue(session, principal.practice_id, start, end, group_by)
    if not wants_csv(request, fmt):
        return JSONResponse(report)
    cols = ["key", "billed_cents", "collected_cents", "adjusted_cents", "outstanding_cents"]
    return csv_response(cols, ([r[c] for c in cols] for r in report["rows"]), f"revenue-by-{group_by}")


@router.get("/journal", summary="The books as double-entry journal entries (CSV imports into QuickBooks Online, Xero)")
async def journal(
    request: Request,
    principal: StaffPrincipal,
    svc: ServiceDep,
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: str | None = None,
    fmt: Format = None,
) -> Response:
    """Entries in date order. JSON pages with `limit`/`cursor`; the CSV (columns `JournalNo,
    JournalDate, AccountName, Debits, Credits, Description`) holds the whole range, streamed as
    Postgres writes it, amounts in the practice's currency, JournalNo numbering its entries in order."""
    check_range(start, end)
    if wants_csv(request, fmt):
        async with svc.db.transaction() as session:
            practice = await queries.practice(session, principal.practice_id)
        return StreamingResponse(
            _journal_csv(svc, practice, start, end),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="journal.csv"'},
        )
    after = None
    if cursor:
        parts = decode_cursor(cursor)
        if len(parts) != 3 or not all(isinstance(p, str) for p in parts):
            raise ApiError(422, "invalid_cursor", "cursor is not one this API returned")
        after = (parts[0], parts[1], parts[2])
    async with svc.db.transaction() as session:
        practice, items = await queries.journal(
            session, principal.practice_id, start, end, after=after, limit=limit + 1
        )
    more = len(items) > limit
    items = items[:limit]
    last = items[-1] if items else None
    next_cursor = encode_cursor(last["date"], last["at"].isoformat(), last["entry_id"]) if more and last else None
    for item in items:
        del item["at"]
    return JSONResponse({"currency": practice.currency, "items": items, "next_cursor": next_cursor})


CSV_CHUNK_BYTES = 64 * 1024


async def _journal_csv(
    svc: Service, practice: queries.Practice, start: dt.date | None, end: dt.date | None
) -> AsyncIterator[bytes]:
    """COPY's output as it comes, in pieces of about 64 KB (COPY hands over a row at a time),
    through a bounded queue between the query and the client."""
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    pending = bytearray()

    async def sink(row: bytes) -> None:
        pending.extend(row)
        if len(pending) >= CSV_CHUNK_BYTES:
            await chunks.put(bytes(pending))
            pending.clear()

    async def copy() -> None:
        async with svc.db.transaction() as session:
            await queries.journal_csv(session, practice, start, end, sink)
        await chunks.put(bytes(pending))
        await chunks.put(None)

    task = asyncio.create_task(copy())
    try:
        while (chunk := await chunks.get()) is not None:
            yield chunk
        await task  # its error, if any
    finally:
        task.cancel()


@router.get("/audit", summary="Who did what: every write in any service and every PDF download, in order")
async def audit(
    principal: StaffPrincipal,
    svc: ServiceDep,
    client_id: str | None = None,
    actor: str | None = None,
    start: Annotated[dt.datetime | None, Query(alias="from")] = None,
    end: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: str | None = None,
) -> JSONResponse:
    """Read only: the log is append-only (no route edits or deletes it, and the table refuses
    UPDATE and DELETE). `from`/`to` are timestamps (or dates) bounding `at`, `to` exclusive."""
    start, end = (t.replace(tzinfo=dt.UTC) if t and t.tzinfo is None else t for t in (start, end))
    if start and end and start > end:
        raise ApiError(422, "invalid_range", "from is after to")
    after = None
    if cursor:
        parts = decode_cursor(cursor)
        if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise ApiError(422, "invalid_cursor", "cursor is not one this API returned")
        after = (dt.datetime.fromisoformat(parts[0]), parts[1])
    async with svc.db.transaction() as session:
        items = await queries.audit(
            session, principal.practice_id, client_id=client_id, actor=actor, start=start, end=end, after=after,
            limit=limit + 1,
        )  # fmt: skip
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1]["at"], items[-1]["id"]) if more else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})
