"""The e2e tier: the four services as processes, driven only through the contract."""

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from shared import admin
from shared.auth import issue_token
from shared.settings import Settings
from tests.conftest import isolated_topics
from tests.processes import SmtpInbox, Stack, free_port, running_services, smtp_server


@pytest.fixture(scope="session")
def smtp_inbox() -> Iterator[tuple[SmtpInbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
async def stack(test_settings: Settings, smtp_inbox: tuple[SmtpInbox, int]) -> AsyncIterator[Stack]:
    """A database and topics of its own: the processes must not consume what the integration
    tests publish, nor compete with their in-process services for work."""
    inbox, port = smtp_inbox
    own = await isolated_topics(test_settings.model_copy(update={"pg_database": f"{test_settings.pg_database}_e2e"}))
    await admin.ensure_database(own)
    try:
        # Behind a trusted proxy (127.0.0.1): the fuzzer's pay page guesses carry an address of their
        # own in X-Forwarded-For, so its per-IP lockout cannot reach other tests' payments.
        async with running_services(own, inbox, port, extra_env={"TRUSTED_PROXIES": "127.0.0.1"}) as running:
            yield running
    finally:
        await admin.drop_database(own, own.pg_database)


@pytest.fixture(scope="session")
async def web(stack: Stack) -> str:
    """The web service (staff console and client portal) over the e2e stack's services, started
    on first use and stopped with the stack; its local sign-in page is off, as in production."""
    port = free_port()
    stack.env.update(WEB_PORT=str(port), WEB_DEV_SIGN_IN="false")
    stack.settings = stack.settings.model_copy(update={"web_port": port})
    stack.start("web")
    await stack.ready("web")
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def staff_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token('practice-rivers-edge', 'staff')}"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def publish(publish: Callable[..., Any], stack: Stack) -> Callable[..., Any]:
    """Upstream publishes to the e2e stack's topics."""
    return functools.partial(publish, settings=stack.settings)
