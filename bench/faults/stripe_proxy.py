"""A recording proxy in front of localstripe that keeps Stripe's idempotency promise, which
localstripe itself ignores: the first answer to an `Idempotency-Key` is replayed to every retry,
a retry with other parameters is refused with Stripe's `idempotency_error`, and a retry while
the first call is still running gets 409. Every request is recorded (key, path, parameters), so
a test can prove that retries after a timeout reuse the same key and the same parameters.

It also injects Stripe-side faults: `down` (connection refused), `lose_answers` (Stripe acts,
the answer never arrives in time: the caller times out) and `hold` (a call waits in flight until
released, so a test can kill the caller mid-call)."""

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding", "host"}


@dataclass
class Recorded:
    method: str
    path: str
    key: str | None
    params: tuple[tuple[str, str], ...]
    status: int
    replayed: bool
    lost: bool
    at: float  # when the request arrived (records are appended when answered)


@dataclass
class _Cached:
    params: tuple[tuple[str, str], ...]
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class StripeProxy:
    upstream: str
    port: int
    records: list[Recorded] = field(default_factory=list)
    lose_answers: int = 0
    lose_delay: float = 10.0
    hold: asyncio.Event | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _in_flight: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        await self.up()

    async def up(self) -> None:
        """Listen (again)."""
        if self._site is None:
            assert self._runner is not None
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await self._site.start()

    async def down(self) -> None:
        """Stop listening: callers get connection refused, as when Stripe is unreachable."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        await self.down()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    def calls(self, path_prefix: str) -> list[Recorded]:
        return [r for r in self.records if r.method == "POST" and r.path.startswith(path_prefix)]

    def retries_with_other_params(self) -> list[str]:
        """Keys sent more than once with different parameters (Stripe refuses those)."""
        seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        for r in self.records:
            if r.key:
                seen.setdefault(r.key, set()).add(r.params)
        return sorted(k for k, v in seen.items() if len(v) > 1)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        params = tuple(sorted(parse_qsl(body.decode(), keep_blank_values=True))) if body else ()
        path = request.path_qs
        if request.method != "POST" or not key:
            status, out, headers = await self._forward(request, body)
            self._record(arrived, request.method, path, key, params, status, replayed=False, lost=False)
            return web.Response(status=status, body=out, headers=headers)
        cached = self._cache.get(key)
        if cached is not None:
            if cached.params != params:
                self._record(arrived, "POST", path, key, params, 400, replayed=False, lost=False)
                return _stripe_error(
                    400,
                    f"Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}'.",
                )
            self._record(arrived, "POST", path, key, params, cached.status, replayed=True, lost=False)
            return web.Response(
                status=cached.status, body=cached.body, headers={**cached.headers, "Idempotent-Replayed": "true"}
            )
        if key in self._in_flight:
            self._record(arrived, "POST", path, key, params, 409, replayed=False, lost=False)
            return _stripe_error(409, "There is currently another in-progress request using this Idempotency-Key.")
        self._in_flight.add(key)
        try:
            if self.hold is not None:
                self.held.set()
                await self.hold.wait()
            status, out, headers = await self._forward(request, body)
            if status < 500:
                self._cache[key] = _Cached(params, status, out, headers)
        finally:
            self._in_flight.discard(key)
        lost = self.lose_answers > 0
        self._record(arrived, "POST", path, key, params, status, replayed=False, lost=lost)
        if lost:
            self.lose_answers -= 1
            await asyncio.sleep(self.lose_delay)  # Stripe acted; the caller gives up waiting
        return web.Response(status=status, body=out, headers=headers)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            async with self._http.request(
                request.method, f"{self.upstream}{request.path_qs}", data=body or None, headers=headers
            ) as resp:
                out = await resp.read()
                kept = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
                return resp.status, out, kept
        except (TimeoutError, aiohttp.ClientError):
            return (
                502,
                json.dumps({"error": {"type": "api_error", "message": "Stripe unreachable"}}).encode(),
                {"Content-Type": "application/json"},
            )

    def _record(
        self,
        arrived: float,
        method: str,
        path: str,
        key: str | None,
        params: Any,
        status: int,
        *,
        replayed: bool,
        lost: bool,
    ) -> None:
        self.records.append(Recorded(method, path, key, params, status, replayed, lost, arrived))


def _stripe_error(status: int, message: str) -> web.Response:
    body = {"error": {"type": "idempotency_error", "message": message}}
    return web.json_response(body, status=status)
