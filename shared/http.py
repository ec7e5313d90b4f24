"""HTTP plumbing every service shares: the error shape, ops endpoints, pagination, and
Idempotency-Key handling for writes."""

import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import audit
from shared.metrics import HTTP_LATENCY


class ApiError(Exception):
    """An error answer: `{"error": {"code", "message"}}` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()[:5]
        )
        return error_response(422, "validation_error", details or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))


def install_metrics_middleware(app: FastAPI, service: str) -> None:
    @app.middleware("http")
    async def _timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_LATENCY.labels(service, request.method, path, str(response.status_code)).observe(
            time.perf_counter() - start
        )
        return response


def ops_router(readiness: Callable[[], Awaitable[dict[str, str]]]) -> APIRouter:
    """/healthz (process up), /readyz (its DB and broker answer), /metrics (Prometheus)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(jsonable_encoder(parts)).encode()).decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc
    if not isinstance(value, list):
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned")
    return value


def request_fingerprint(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, jsonable_encoder(body)], sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()


async def idempotent_replay(
    session: AsyncSession, table: Table, practice_id: str, key: str | None, fingerprint: str
) -> tuple[int, Any] | None:
    """Claim `key` inside the caller's transaction. Returns the stored (status, body) of the
    first request with this key, or None if this request is the first and should proceed.
    A concurrent request with the same key waits on the row until the first commits."""
    if not key:
        return None
    inserted = await session.scalar(
        insert(table)
        .values(practice_id=practice_id, key=key, request_hash=fingerprint)
        .on_conflict_do_nothing()
        .returning(table.c.key)
    )
    if inserted:
        return None
    return await idempotent_lookup(session, table, practice_id, key, fingerprint)


async def idempotent_lookup(
    session: AsyncSession, table: Table, practice_id: str, key: str | None, fingerprint: str
) -> tuple[int, Any] | None:
    """The stored answer for `key` without claiming it (None if the key is new): for a route
    that must answer a retry before checks the first request changed (e.g. nothing left to pay)."""
    if not key:
        return None
    row = (
        await session.execute(
            select(table.c.request_hash, table.c.status_code, table.c.response).where(
                table.c.practice_id == practice_id, table.c.key == key
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
    if row.status_code is None:
        raise ApiError(409, "request_in_progress", "a request with this Idempotency-Key is still running")
    return row.status_code, row.response


async def idempotent_store(
    session: AsyncSession, table: Table, practice_id: str, key: str | None, status: int, body: Any
) -> None:
    await audit.record_request(session, status, body)  # every write answers through here
    if not key:
        return
    await session.execute(
        table.update()
        .where(table.c.practice_id == practice_id, table.c.key == key)
        .values(status_code=status, response=jsonable_encoder(body))
    )


async def idempotent_answer(
    session: AsyncSession,
    table: Table,
    practice_id: str,
    key: str | None,
    fingerprint: str,
    work: Callable[[AsyncSession], Awaitable[tuple[int, Any]]],
) -> tuple[int, Any]:
    """The stored answer of the first request with `key`, else `work`'s answer, stored for
    `key`: claim, work and store in the caller's one transaction, so a key is never left
    claimed without its answer once the work commits."""
    replay = await idempotent_replay(session, table, practice_id, key, fingerprint)
    if replay is not None:
        return replay
    result = await work(session)
    await idempotent_store(session, table, practice_id, key, *result)
    return result
