"""Wiring of the web service: upstream API client, sign-in, CSRF, static assets, page routers.
Owns no database and consumes no events: every page is read from the services' HTTP APIs."""

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_csrf import asgi_csrf
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from services.web import assets, auth
from services.web.client import SERVICES, ApiProblem, Services
from services.web.portal import ROUTERS as PORTAL_ROUTERS
from services.web.practice import Practices
from services.web.staff import ROUTERS as STAFF_ROUTERS
from services.web.views import render
from shared.http import ApiError, BodyGuard, install_metrics_middleware, ops_router
from shared.logs import configure_logging
from shared.settings import Settings
from shared.stripe_js import localstripe_router

CSRF_ALWAYS = {"/dev/sign-in", "/sign-out"}


async def csrf_failed(scope: Scope, send: Send, message_id: Any) -> None:
    body = (
        b"<!doctype html><html lang=en><title>Form expired</title><main><h1>This form expired</h1>"
        b"<p>Reload the page and try again.</p></main></html>"
    )
    await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": body})


class CsrfMiddleware:
    """asgi-csrf's signed double-submit cookie: every form posts `csrftoken`, htmx sends it as the
    `x-csrftoken` header (set on <body>). The signing key is derived from AUTH_SECRET, so replicas agree.
    A multipart body without a boundary is refused first (asgi-csrf would fail on it with a 500)."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        key = hashlib.sha256(b"web-csrf:" + secret.encode()).hexdigest()
        self.app = asgi_csrf(app, signing_secret=key, always_protect=CSRF_ALWAYS, send_csrf_failed=csrf_failed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"") if scope["type"] == "http" else b""
        if content_type.startswith(b"multipart/form-data") and b"boundary=" not in content_type:
            await csrf_failed(scope, send, None)
            return
        await self.app(scope, receive, send)


def build(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    services = Services(settings, transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
        try:
            yield
        finally:
            await services.close()

    public = settings.app_env != "production"  # production: no docs, OpenAPI or metrics on the public port
    docs = {} if public else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(
        title="web", description="Staff billing console and client portal", lifespan=lifespan, version="1", **docs
    )  # type: ignore[arg-type]
    app.state.settings = settings
    app.state.services = services
    app.state.practices = Practices(services, settings)
    install_handlers(app)
    install_metrics_middleware(app, "web")
    install_timing(app)
    app.add_middleware(CsrfMiddleware, secret=settings.auth_secret)
    # Outermost: a body over HTTP_MAX_BODY_BYTES (413) or a NUL byte (422) never reaches asgi-csrf,
    # which reads a whole form body into memory to find its token.
    app.add_middleware(BodyGuard, max_bytes=settings.http_max_body_bytes)

    async def readiness() -> dict[str, str]:
        """Ready when the services it reads answer (it has no database or broker of its own)."""

        async def check(name: str) -> str:
            try:
                r = await services.http.get(f"{services.urls[name]}/healthz", timeout=2)
                return "ok" if r.status_code == 200 else f"error: {r.status_code}"
            except httpx.HTTPError as exc:
                return f"error: {type(exc).__name__}"

        results = await asyncio.gather(*(check(s) for s in SERVICES))
        return dict(zip(SERVICES, results, strict=True))

    assets.mount(app)  # first: /static/... never reaches a page route
    app.include_router(ops_router(readiness, metrics=public))
    app.include_router(auth.router)
    app.include_router(auth.dev)
    for router in [*STAFF_ROUTERS, *PORTAL_ROUTERS]:
        app.include_router(router)
    dev_stripe = localstripe_router(settings)  # only when Stripe.js is localstripe's
    if dev_stripe:
        app.include_router(dev_stripe)
    return app


def install_timing(app: FastAPI) -> None:
    @app.middleware("http")
    async def _server_timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Server-Timing: the time a page spent waiting on the services' APIs, beside its total."""
        start = time.perf_counter()
        response = await call_next(request)
        viewer = getattr(request.state, "viewer", None)
        if viewer is not None:
            total = (time.perf_counter() - start) * 1000
            response.headers["Server-Timing"] = f"api;dur={viewer.api.api_ms:.1f}, total;dur={total:.1f}"
        return response


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(auth.SignInRequired)
    async def _sign_in(request: Request, _: Exception) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/sign-in"})
        return RedirectResponse("/sign-in", status_code=303)

    @app.exception_handler(auth.StaffOnly)
    async def _staff_only(request: Request, _: Exception) -> HTMLResponse:
        return render(request, "error.html", status_code=403, message="This page is for practice staff.")

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> HTMLResponse:
        return render(request, "error.html", status_code=exc.status, message=exc.message)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> HTMLResponse:
        return render(request, "error.html", status_code=exc.status, message=exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        message = "This page does not exist." if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", status_code=exc.status_code, message=message)
