"""A small client of the other services' HTTP APIs, called with the signed-in person's own
bearer token: the services decide what that person may see and do, the web only shows it."""

import time
from typing import Any

import httpx

from shared.http import UPSTREAM_LIMITS
from shared.settings import Settings

SERVICES = ("billing", "payments", "documents", "notifications", "reports")


class ApiProblem(Exception):
    """A service said no: its status, error code and message (shown to the person in words)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def problem_of(response: httpx.Response) -> ApiProblem:
    try:
        error = response.json()["error"]
        return ApiProblem(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return ApiProblem(response.status_code, "http_error", f"the service answered {response.status_code}")


def safe_path(path: str) -> bool:
    """An upstream path built from ids: no query or fragment, no empty, `.` or `..` segment (a page's
    id such as `?status=open`, `..` or a missing one would otherwise reach another route of the service)."""
    segments = path.split("/")[1:]
    return not any(c in path for c in "?#\\") and not any(seg in ("", ".", "..") for seg in segments)


class Services:
    """One pooled HTTP client for every upstream service."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = {s: settings.service_url(s) for s in SERVICES}
        self.http = httpx.AsyncClient(timeout=15, transport=transport, limits=UPSTREAM_LIMITS)

    async def close(self) -> None:
        await self.http.aclose()

    def bound(self, token: str) -> "Api":
        return Api(self, token)


class Api:
    """The upstream APIs as one signed-in person: `await api.get("billing", "/v1/bills")`.
    `api_ms` is the time this request spent waiting on them (shown in Server-Timing and by the
    page-render benchmark next to the whole render)."""

    def __init__(self, services: Services, token: str) -> None:
        self.services = services
        self.headers = {"Authorization": f"Bearer {token}"}
        self.api_ms = 0.0
        self._inflight = 0
        self._since = 0.0

    async def request(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        if not safe_path(path):  # an id from the page's URL must not turn into another route or query upstream
            raise ApiProblem(404, "not_found", "This page does not exist.")
        headers = {**self.headers, **(kwargs.pop("headers", None) or {})}
        if self._inflight == 0:
            self._since = time.perf_counter()
        self._inflight += 1
        try:
            response = await self.services.http.request(
                method, self.services.urls[service] + path, headers=headers, **kwargs
            )
        except httpx.InvalidURL as exc:  # a control character in an id from the page's URL
            raise ApiProblem(404, "not_found", "This page does not exist.") from exc
        except httpx.HTTPError as exc:
            raise ApiProblem(503, "service_unavailable", f"the {service} service did not answer; try again") from exc
        finally:
            # Wall time with at least one call in flight (calls made together count once).
            self._inflight -= 1
            if self._inflight == 0:
                self.api_ms += (time.perf_counter() - self._since) * 1000
        if response.status_code >= 400:
            raise problem_of(response)
        if response.is_redirect:  # the APIs never redirect a right path (a trailing slash, say): no such page
            raise ApiProblem(404, "not_found", "This page does not exist.")
        return response

    async def get(self, service: str, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return (await self.request("GET", service, path, params=clean)).json()

    async def send(self, method: str, service: str, path: str, body: Any = None, *, key: str | None = None) -> Any:
        """A write; `key` becomes the Idempotency-Key, so a resubmitted form is not applied twice."""
        headers = {"Idempotency-Key": key} if key else None
        response = await self.request(method, service, path, json=body, headers=headers)
        return response.json() if response.content else None

    async def post(self, service: str, path: str, body: Any = None, *, key: str | None = None) -> Any:
        return await self.send("POST", service, path, body, key=key)

    async def put(self, service: str, path: str, body: Any = None, *, key: str | None = None) -> Any:
        return await self.send("PUT", service, path, body, key=key)
