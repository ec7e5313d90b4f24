"""The client portal and the emailed pay link, in Chromium against the services as processes and
localstripe: what a client sees and does, by role and accessible name."""

import re
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import A11y, WebStack, sign_in
from tests.browser.scene import Scene
from tests.conftest import eventually

VISA, THREE_D_SECURE = "4242424242424242", "4000002500003155"
PAY_PAGE_SHOT = Path(__file__).resolve().parents[2] / ".stack" / "screenshots" / "pay-page.png"  # looked at by hand


@pytest.fixture
def scene(publish, web: WebStack, api: httpx.AsyncClient) -> Scene:
    return Scene(publish, web, api)


async def shared_bill(scene: Scene, web: WebStack, api: httpx.AsyncClient, client_id: str, fee: int) -> dict[str, Any]:
    """A bill for one new session, shared now, once its PDF exists and payments knows it."""
    session_id = await scene.session(client_id, fee_cents=fee)
    await scene.unbilled(session_id)
    billing = web.api("billing")
    r = await api.post(f"{billing}/v1/bills", json={"client_id": client_id, "session_ids": [session_id],
                                                     "responsibility": "client"})  # fmt: skip
    assert r.status_code == 201, r.text
    bill = r.json()
    assert (await api.post(f"{billing}/v1/bills/{bill['id']}/share", json={})).status_code in (200, 202)

    async def ready() -> dict[str, Any] | None:
        current = (await api.get(f"{billing}/v1/bills/{bill['id']}")).json()
        known = await api.get(f"{web.api('payments')}/v1/payments", params={"bill_id": bill["id"]})
        return current if current["document_id"] and current["shared"] and known.status_code == 200 else None

    return await eventually(ready, timeout=90)  # the first PDF render of a session is slow on a busy machine


async def fill_card(page: Page, number: str) -> None:
    """localstripe's card form (its inputs named by localstripe-compat.js, as Stripe's own are)."""
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry month (MM)").fill("12")
    await page.get_by_label("Expiry year (YY)").fill("31")
    await page.get_by_label("Security code (CVC)").fill("123")
    await page.get_by_label("Postal code").fill("94110")


async def test_a_client_adds_a_card_with_its_authorization_turns_on_autopay_and_pays(
    page: Page, a11y: A11y, scene: Scene, web: WebStack, api: httpx.AsyncClient
) -> None:
    client_id = await scene.client("Robin", "Okafor")
    bill = await shared_bill(scene, web, api, client_id, 14000)
    await sign_in(page, a11y, role="client", client=client_id)
    await expect(page.get_by_role("heading", name="Your billing", level=1)).to_be_visible()
    await a11y.check(page)
    bills = page.get_by_role("region", name="Bills")
    row = bills.get_by_role("row").filter(has_text=f"#{bill['number']}")
    await expect(row).to_contain_text("$140.00")
    async with page.expect_download() as download:
        await row.get_by_role("link", name="Download PDF").click()
    with open(await (await download.value).path(), "rb") as pdf:  # noqa: ASYNC230 (a small local file)
        assert pdf.read(4) == b"%PDF"

    await page.get_by_role("link", name="Cards & autopay").click()
    await expect(page.get_by_role("heading", name="Cards and autopay", level=1)).to_be_visible()
    await a11y.check(page)
    await page.get_by_role("button", name="Add card").click()
    await expect(page.locator("#authorization-text")).to_contain_text("to keep this card on file")
    await page.get_by_label("Type your full name to sign").fill("Robin Okafor")
    await page.get_by_label("I have read and agree to this authorization").check()
    await fill_card(page, VISA)
    await a11y.check(page)
    await page.get_by_role("button", name="Save card").click()
    await expect(page.get_by_text("Your card was saved.")).to_be_visible()
    await expect(page.get_by_text("Authorization signed by Robin Okafor")).to_be_visible()
    await a11y.check(page)
    await page.get_by_role("switch", name="Pay my bills automatically (autopay)").check()
    await page.get_by_role("button", name="Save autopay").click()
    await expect(page.locator("#autopay-state")).to_have_text("on")
    await a11y.check(page)
    autopay = (await api.get(f"{web.api('payments')}/v1/clients/{client_id}/autopay")).json()
    assert autopay["enabled"] is True

    await page.get_by_role("link", name="Billing", exact=True).click()
    await a11y.check(page)
    await (
        page.get_by_role("region", name="Bills")
        .get_by_role("row")
        .filter(has_text=f"#{bill['number']}")
        .get_by_role("button", name="Pay")
        .click()
    )
    await expect(page.get_by_role("heading", name=f"Pay bill #{bill['number']}")).to_be_visible()
    await a11y.check(page)
    await expect(page.get_by_label("Amount to pay")).to_have_value("140.00")
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("status")).to_contain_text("Your payment of $140.00", timeout=30_000)
    await a11y.check(page)

    async def receipt() -> bool:
        await page.goto("/portal/notifications")
        return await page.get_by_role("heading", name=re.compile(r"Receipt for your payment of \$140\.00")).count() > 0

    await eventually(receipt, timeout=30)
    await a11y.check(page)
    paid = (await api.get(f"{web.api('billing')}/v1/bills/{bill['id']}")).json()
    assert paid["status"] == "paid" and paid["balance_cents"] == 0


def pay_link_and_code(message: Message) -> tuple[str, str]:
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    link = re.search(r"https?://\S+/pay\?practice=\S+&bill=\d+", text)
    code = re.search(r"Access code: (\d{6})", text)
    assert link and code, text
    return link.group(0), code.group(1)


async def test_the_emailed_pay_link_opens_the_pay_page_and_pays_with_3d_secure(
    page: Page, a11y: A11y, scene: Scene, web: WebStack, api: httpx.AsyncClient
) -> None:
    client_id = await scene.client("Sam", "Rivera")
    bill = await shared_bill(scene, web, api, client_id, 12000)
    address = f"{client_id}@example.com"
    [message] = await eventually(lambda: [m for m in web.stack.inbox.to(address) if "Your bill #" in m["Subject"]])
    link, code = pay_link_and_code(message)
    assert f"bill={bill['number']}" in link

    await page.goto(link)
    await expect(page.get_by_role("heading", name="Pay your bill")).to_be_visible()
    await a11y.check(page)
    await expect(page.get_by_label("Bill number")).to_have_value(str(bill["number"]))
    await page.get_by_label("Access code").fill(code)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_text("Amount due: $120.00")).to_be_visible()
    await expect(page.locator("#practice")).to_have_text(bill["practice"]["name"] or "your therapy practice")
    await a11y.check(page)
    # "$50" is fifty dollars, never "everything"; a card asking for 3-D Secure is confirmed in the browser.
    await page.get_by_label("Amount to pay").fill("$50")
    await fill_card(page, THREE_D_SECURE)
    await page.screenshot(path=str(PAY_PAGE_SHOT), full_page=True)
    await page.get_by_role("button", name="Pay").click()
    await page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure dialog
    await expect(page.get_by_role("status")).to_have_text(
        "Thank you, your payment of $50.00 was received.", timeout=30_000
    )
    await a11y.check(page)

    async def balance_is(cents: int) -> bool:
        return (await api.get(f"{web.api('billing')}/v1/bills/{bill['id']}")).json()["balance_cents"] == cents

    await eventually(lambda: balance_is(7000))
    # The rest, with another card; an amount that is not a number is refused on the page.
    await page.goto(link)
    await page.get_by_label("Access code").fill(code)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_text("Amount due: $70.00")).to_be_visible()
    await page.get_by_label("Amount to pay").fill("seventy")
    await fill_card(page, VISA)
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("status")).to_have_text("Enter the amount as a number, for example 50 or 50.00.")
    await page.get_by_label("Amount to pay").fill("70")
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Thank you, your payment of $70.00 was received.", timeout=30_000
    )
    await a11y.check(page)
    await eventually(lambda: balance_is(0))
