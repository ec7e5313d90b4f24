"""The browser tier: the services as processes (tests/processes.py) plus the web service, one
stack per pytest session, driven by Debian's Chromium through Playwright (its own browser
download cannot work here). Every page a test visits is checked with axe-core (no serious or
critical violation), and a failing test leaves a screenshot of its last page in .stack/screenshots."""

import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from shared import admin
from shared.auth import issue_token
from shared.http import UPSTREAM_LIMITS
from shared.settings import Settings
from tests.conftest import isolated_topics
from tests.processes import ROOT, SmtpInbox, Stack, free_port, running_services, smtp_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / ".stack" / "screenshots"
PRACTICE = "practice-browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
BLOCKING = {"serious", "critical"}
PRACTICE_SETTINGS = {
    "name": "Browser Practice",
    # what a superbill must name (CMS-1500 box 32/33)
    "address": {"line1": "1 River Rd", "city": "Portland", "state": "OR", "postal_code": "97201"},
    "phone": "+1-503-555-0100",
    "tax_id": "93-1234567",
    "npi": "1234567893",
    "timezone": "America/Los_Angeles",
    "currency": "USD",
    "auto_share_bills": True,
    "auto_share_delay_hours": 24,
}
# Two cores shared by the whole stack: give pages more than Playwright's default 5 s to settle.
expect.set_options(timeout=15_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Keep each phase's report on the item, so fixtures know in teardown whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class WebStack:
    stack: Stack
    url: str
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = self.stack.settings

    def api(self, service: str) -> str:
        return self.stack.url(service)


@pytest.fixture(scope="session")
def browser_smtp() -> Iterator[tuple[SmtpInbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
async def web(test_settings: Settings, browser_smtp: tuple[SmtpInbox, int]) -> AsyncIterator[WebStack]:
    """The four services with a database and topics of their own, and `python -m services.web`;
    the practice's settings saved (Pacific time, USD, bills auto-shared after a day)."""
    inbox, smtp_port = browser_smtp
    base = test_settings.model_copy(update={"pg_database": f"{test_settings.pg_database}_browser"})
    own = await isolated_topics(base)
    await admin.ensure_database(own)
    try:
        # Autopay nights run only on request: a card saved with autopay on would otherwise be
        # charged by that evening's catch-up run while the test is paying the same bill by hand.
        async with running_services(own, inbox, smtp_port, extra_env={"AUTOPAY_INTERVAL_S": "0"}) as stack:
            port = free_port()
            stack.env.update(WEB_PORT=str(port), WEB_DEV_SIGN_IN="true")
            stack.settings = stack.settings.model_copy(update={"web_port": port})
            stack.start("web")  # stopped with the others when the stack stops
            await stack.ready("web")
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {issue_token(PRACTICE, 'staff')}"}) as http:
                saved = await http.put(f"{stack.url('billing')}/v1/settings", json=PRACTICE_SETTINGS)
                assert saved.status_code == 200, saved.text
            yield WebStack(stack, f"http://127.0.0.1:{port}")
    finally:
        await admin.drop_database(own, own.pg_database)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./dev installs Debian's chromium package")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": LAUNCH_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], web: WebStack) -> dict[str, Any]:
    return {**browser_context_args, "base_url": web.url, "accept_downloads": True}


class A11y:
    """axe-core over every page the test loads: `await a11y.check(page)` after each navigation
    or swap; at the end, every loaded page must have been checked (and a failed test leaves
    its screenshot: this fixture is torn down before the page is)."""

    def __init__(self) -> None:
        self.axe = Axe()
        self.loaded: list[str] = []
        self.checked: set[str] = set()
        self.console: list[str] = []  # printed when the test fails

    def watch(self, page: Page) -> None:
        page.on("load", lambda p: self.loaded.append(p.url))
        page.on("console", lambda m: self.console.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"page error: {e}"))

    async def check(self, page: Page) -> None:
        await page.wait_for_load_state("load")
        results = await self.axe.run(page)
        bad = [v for v in results.response["violations"] if v.get("impact") in BLOCKING]
        details = "\n".join(
            f"- {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad
        )
        assert not bad, f"axe-core on {page.url}:\n{details}"
        self.checked.add(page.url)

    def unchecked(self) -> list[str]:
        return [u for u in dict.fromkeys(self.loaded) if u not in self.checked and not u.startswith("about:")]


@pytest.fixture
async def a11y(page: Page, request: pytest.FixtureRequest) -> AsyncIterator[A11y]:
    checker = A11y()
    checker.watch(page)
    yield checker
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        await screenshot(page, request.node.nodeid)
        print("\n".join(checker.console[-40:]))
    elif report is not None:
        assert not checker.unchecked(), f"pages loaded without an axe check: {checker.unchecked()}"


async def screenshot(page: Page, nodeid: str) -> None:
    """A failing test's last page as a PNG in .stack/screenshots/<test>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])
    try:
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    except Exception as exc:  # a crashed page: say so instead of hiding the test's own failure
        print(f"screenshot of {name} failed: {exc}")


async def sign_in(page: Page, a11y: A11y, role: str = "staff", client: str = "", practice: str = PRACTICE) -> None:
    """Through the local sign-in page, as a person would."""
    await page.goto(f"/dev/sign-in?practice_id={practice}")
    await a11y.check(page)
    await page.get_by_label("Practice").fill(practice)
    await page.get_by_label("Staff" if role == "staff" else "Client", exact=True).check()
    if client:
        await page.get_by_label("Client to sign in as").select_option(client)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state("load")


@pytest.fixture
async def staff_page(page: Page, a11y: A11y) -> Page:
    await sign_in(page, a11y)
    await a11y.check(page)
    return page


@pytest.fixture
def scene(publish: Any, web: WebStack, api: httpx.AsyncClient) -> Any:
    from tests.browser.scene import Scene

    return Scene(publish, web, api)


@pytest.fixture
def staff_token() -> str:
    return issue_token(PRACTICE, "staff")


@pytest.fixture
async def api(web: WebStack, staff_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The services' APIs as the practice's staff (to set the scene and check the outcome)."""
    async with httpx.AsyncClient(
        timeout=15, headers={"Authorization": f"Bearer {staff_token}"}, limits=UPSTREAM_LIMITS
    ) as client:
        yield client
