"""The e2e tier: the four services as processes, driven only through the contract."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from shared.auth import issue_token
from shared.settings import Settings
from tests.processes import SmtpInbox, Stack, running_services, smtp_server


@pytest.fixture(scope="session")
def smtp_inbox() -> Iterator[tuple[SmtpInbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
async def stack(test_settings: Settings, smtp_inbox: tuple[SmtpInbox, int]) -> AsyncIterator[Stack]:
    inbox, port = smtp_inbox
    async with running_services(test_settings, inbox, port) as running:
        yield running


@pytest.fixture
def staff_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token('practice-rivers-edge', 'staff')}"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
