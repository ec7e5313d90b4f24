"""The web service's own guards, in memory: an id from a page's URL cannot become another upstream
route or query, and a multipart body without a boundary is refused instead of crashing asgi-csrf."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.web.app import CsrfMiddleware
from services.web.client import ApiProblem, Services, safe_path
from shared.settings import Settings


@pytest.mark.parametrize("path", ["/v1/bills/b-1", "/v1/clients/c1/cards/9f0e", "/v1/documents/x%2Fy/pdf"])
def test_paths_built_from_ids(path: str) -> None:
    assert safe_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/bills/?status=open",
        "/v1/bills/x#frag",
        "/v1/bills/../settings",
        "/v1/bills/.",
        "/v1/bills/a\\b",
        "/v1/bills/",
        "/v1/bills//cancel",
    ],
)
def test_ids_that_would_reach_another_route_or_query(path: str) -> None:
    assert not safe_path(path)


async def test_a_multipart_form_without_a_boundary_is_refused_not_a_500() -> None:
    async def ok(_: object) -> PlainTextResponse:
        return PlainTextResponse("ran")

    app = CsrfMiddleware(Starlette(routes=[Route("/f", ok, methods=["POST"])]), secret="s" * 32)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
        headers = {"content-type": "multipart/form-data", "cookie": "tb_session=x; csrftoken=y"}
        r = await http.post("/f", content=b"--x--", headers=headers)
        assert r.status_code == 403 and "ran" not in r.text
        r = await http.post("/f", data={"a": "b"}, headers={"cookie": "tb_session=x"})
        assert r.status_code == 403, "a form without its CSRF token"


async def test_an_id_with_a_control_character_is_a_missing_page_not_a_500() -> None:
    services = Services(Settings())
    try:
        with pytest.raises(ApiProblem) as refused:
            await services.bound("t").get("billing", "/v1/bills/a\nb")
        assert refused.value.status == 404
        with pytest.raises(ApiProblem) as refused:
            await services.bound("t").get("billing", "/v1/bills/?status=open")
        assert refused.value.status == 404
    finally:
        await services.close()
