"""The reports service in-process against real Kafka and Postgres, on topics of its own."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.reports.app import build
from shared.auth import issue_token
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import isolated_topics


class Reports:
    def __init__(self, svc: Service, http: httpx.AsyncClient) -> None:
        self.svc = svc
        self.settings = svc.settings
        self.http = http

    def staff(self, practice_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(practice_id, 'staff', secret=self.settings.auth_secret)}"}

    async def get(self, path: str, practice_id: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params, headers=self.staff(practice_id))
        assert response.status_code == 200, response.text
        return response.json()


async def start_reports(settings: Settings) -> tuple[Service, Reports, httpx.AsyncClient]:
    svc, app = build(settings)
    await svc.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reports")
    return svc, Reports(svc, http), http


@pytest.fixture(scope="module")
async def reports_settings(test_settings: Settings) -> Settings:
    return await isolated_topics(test_settings)


@pytest.fixture(scope="module")
async def reports(reports_settings: Settings) -> AsyncIterator[Reports]:
    svc, running, http = await start_reports(reports_settings)
    yield running
    await http.aclose()
    await svc.stop()


@pytest.fixture
def publish_to(publish: Callable[..., Any], reports_settings: Settings) -> Callable[..., Any]:
    async def _publish(topic: str, key: str, event: dict[str, Any]) -> None:
        await publish(topic, event, key=key, settings=reports_settings)

    return _publish
