"""HTTP plumbing every service shares: the error shape, ops endpoints, pagination, and
Idempotency-Key handling for writes."""

import base64
import functools
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Executable, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import audit
from shared.metrics import HTTP_LATENCY

UPSTREAM_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)
"""For a client of our services: httpx's default pool bounds, but a pooled connection idle 2 s is
dropped, well before uvicorn closes it (5 s). At the same 5 s on both sides, a request sent on a
connection the server was closing at that moment failed ("server disconnected") and the caller saw
a service that did not answer (a browser test's page, once in CI)."""


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


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def document_errors(app: FastAPI) -> None:
    """The OpenAPI document says what the error handlers send: every 4xx (422 included, which
    FastAPI documents as its own `{"detail": [...]}`) is `{"error": {"code", "message"}}`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for methods in spec.get("paths", {}).values():
            for op in methods.values():
                responses = op.setdefault("responses", {})
                responses["422"] = {"description": "invalid request", **error}
                responses.setdefault("4XX", {"description": "refused", **error})
        for unused in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


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


# A NUL escaped in JSON (`\u0000` after an even number of backslashes), raw, or %-encoded.
JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
URL_NUL = b"%00"


class BodyGuard:
    """Refuses, before any route runs, a body over `max_bytes` (413) and a NUL byte in the
    body, path or query (422): Postgres text cannot hold NUL, and it has no place in a name."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if URL_NUL in scope.get("raw_path", b"").lower() or "\x00" in scope["path"] or URL_NUL in scope["query_string"]:
            await _refuse(scope, send, 422, "validation_error", "NUL bytes are not allowed in a request")
            return
        headers = dict(scope["headers"])
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(
                scope, send, 413, "payload_too_large", f"request bodies are limited to {self.max_bytes} bytes"
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(
                    scope, send, 413, "payload_too_large", f"request bodies are limited to {self.max_bytes} bytes"
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if (
            b"\x00" in body
            or JSON_NUL.search(body)
            or (URL_NUL in body and b"urlencoded" in headers.get(b"content-type", b""))
        ):
            await _refuse(scope, send, 422, "validation_error", "NUL bytes are not allowed in a request")
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """A receive callable giving `messages` already read, then the server's own (a disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await error_response(status, code, message)(scope, no_body, send)


class RequestMetrics:
    """`http_request_seconds` per service, method, route and status. Pure ASGI: Starlette's
    `@app.middleware("http")` runs every request through an extra task and memory streams."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers if the app fails before it starts a response

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(time.perf_counter() - start)


def install_metrics_middleware(app: FastAPI, service: str) -> None:
    app.add_middleware(RequestMetrics, service=service)


def ops_router(readiness: Callable[[], Awaitable[dict[str, str]]], *, metrics: bool = True) -> APIRouter:
    """/healthz (process up), /readyz (its DB and broker answer), and /metrics unless `metrics`
    is off (production services serve it on their admin listener instead)."""
    router = APIRouter(tags=["ops"])
    if metrics:
        router.add_api_route("/metrics", metrics_route, methods=["GET"], summary="Prometheus metrics")

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    return router


async def metrics_route() -> Response:
    """Prometheus metrics (on the admin listener in production)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


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


class KeyStatements(NamedTuple):
    claim: Executable
    lookup: Executable
    store: Executable


@functools.cache
def _key_statements(table: Table) -> KeyStatements:
    """A service's Idempotency-Key statements (claim, look up, store the answer), built once per
    table: SQLAlchemy then finds their compiled form by a cache key memoized on each statement,
    instead of building them and computing that key on every write."""
    t = table
    # (a column's own name is reserved for its value in an UPDATE's SET)
    same_key = (t.c.practice_id == bindparam("of_practice"), t.c.key == bindparam("of_key"))
    return KeyStatements(
        claim=insert(t).on_conflict_do_nothing().returning(t.c.key),
        lookup=select(t.c.request_hash, t.c.status_code, t.c.response).where(*same_key),
        store=t.update().where(*same_key).values(status_code=bindparam("status_code"), response=bindparam("response")),
    )


async def idempotent_replay(
    session: AsyncSession, table: Table, practice_id: str, key: str | None, fingerprint: str
) -> tuple[int, Any] | None:
    """Claim `key` inside the caller's transaction. Returns the stored (status, body) of the
    first request with this key, or None if this request is the first and should proceed.
    A concurrent request with the same key waits on the row until the first commits."""
    if not key:
        return None
    inserted = await session.scalar(
        _key_statements(table).claim, {"practice_id": practice_id, "key": key, "request_hash": fingerprint}
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
        await session.execute(_key_statements(table).lookup, {"of_practice": practice_id, "of_key": key})
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
    answer = {"status_code": status, "response": jsonable_encoder(body)}
    await session.execute(_key_statements(table).store, {"of_practice": practice_id, "of_key": key, **answer})


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
