"""Every request's shared dependencies (the service, the caller's token) run on the event loop:
FastAPI runs a plain `def` dependency in a worker thread, which costs each request a thread hop."""

from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI

from shared.auth import CurrentPrincipal, StaffPrincipal, issue_token
from shared.runtime import ServiceDep
from shared.settings import get_settings


class Service:
    name = "the service"
    settings = get_settings()


async def test_the_shared_dependencies_run_without_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[Any] = []

    async def to_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return func(*args)

    monkeypatch.setattr(anyio.to_thread, "run_sync", to_thread)  # what Starlette's run_in_threadpool calls
    app = FastAPI()
    app.state.service = Service()

    @app.post("/v1/things")
    async def create(service: ServiceDep, principal: CurrentPrincipal, staff: StaffPrincipal) -> dict[str, str]:
        return {"service": service.name, "practice": principal.practice_id}

    headers = {"Authorization": f"Bearer {issue_token('p1', 'staff')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/v1/things", headers=headers)
    assert r.json() == {"service": "the service", "practice": "p1"}
    assert hops == [], f"ran in a worker thread: {hops}"
