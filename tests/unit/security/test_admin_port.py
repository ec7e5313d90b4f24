"""In production the public port serves the API only; docs, OpenAPI, AsyncAPI and metrics are on
the admin listener. In development they stay on the public port."""

import httpx
import pytest

from shared.settings import Settings
from tests.unit.security.apps import SERVICES, app

INTROSPECTION = ["/docs", "/openapi.json", "/asyncapi.json", "/metrics"]


async def statuses(asgi, paths: list[str]) -> dict[str, int]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://svc") as http:
        return {path: (await http.get(path)).status_code for path in paths}


@pytest.mark.parametrize("service", SERVICES)
async def test_production_moves_introspection_to_the_admin_listener(service: str) -> None:
    public = app(service, Settings(app_env="production"))
    assert set((await statuses(public, [*INTROSPECTION, "/healthz"])).values()) == {404, 200}
    assert (await statuses(public, INTROSPECTION)) == dict.fromkeys(INTROSPECTION, 404)
    admin = public.state.service.admin_app(public)
    assert (await statuses(admin, INTROSPECTION)) == dict.fromkeys(INTROSPECTION, 200)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin), base_url="http://svc") as http:
        assert any(p.startswith("/v1/") for p in (await http.get("/openapi.json")).json()["paths"])


async def test_development_keeps_them_on_the_public_port() -> None:
    public = app("billing", Settings())
    assert (await statuses(public, INTROSPECTION)) == dict.fromkeys(INTROSPECTION, 200)
