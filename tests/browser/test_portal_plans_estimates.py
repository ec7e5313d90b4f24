"""The portal beyond bills: a client's payment plan (schedule, next installment, status, after
the nightly run charged the first installment), their Good Faith Estimate with Download PDF, a
card added through a SetupIntent confirmed in the browser (3-D Secure included), and a bill paid
with a new card. A practice of its own: the nightly run it triggers charges every plan of it."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from shared.auth import issue_token
from shared.http import UPSTREAM_LIMITS
from tests.browser.conftest import PRACTICE_SETTINGS, A11y, WebStack, sign_in
from tests.browser.scene import Scene
from tests.browser.test_portal import THREE_D_SECURE, VISA, fill_card, shared_bill
from tests.conftest import eventually
from tests.integration.payments.conftest import payment_method

PORTAL_PRACTICE = "practice-browser-portal"


@pytest.fixture
async def own(publish: Any, web: WebStack) -> AsyncIterator[Scene]:
    """The practice's staff API and scene, its settings saved (what an estimate must name)."""
    headers = {"Authorization": f"Bearer {issue_token(PORTAL_PRACTICE, 'staff')}"}
    async with httpx.AsyncClient(timeout=15, headers=headers, limits=UPSTREAM_LIMITS) as api:
        saved = await api.put(
            f"{web.api('billing')}/v1/settings", json={**PRACTICE_SETTINGS, "name": "Portal Practice"}
        )
        assert saved.status_code == 200, saved.text
        yield Scene(publish, web, api, practice=PORTAL_PRACTICE)


async def test_the_client_sees_their_payment_plan_and_estimate(page: Page, a11y: A11y, own: Scene) -> None:
    web, api = own.web, own.api
    client_id = await own.client("Lena", "Fischer")
    bill = await own.bill(client_id, await own.session(client_id, fee_cents=10001))
    pm = await payment_method(web.settings)
    card = {"stripe_payment_method_id": pm, "authorization": {"signed_by": "Lena Fischer", "method": "paper",
            "signed_at": "2026-11-02T10:00:00Z"}}  # fmt: skip
    r = await api.post(f"{web.api('payments')}/v1/clients/{client_id}/cards", json=card)
    assert r.status_code == 201, r.text
    plan = {"bill_ids": [bill["id"]], "installments": 3, "frequency": "monthly", "start_date": "2027-01-04",
            "card_id": r.json()["id"]}  # fmt: skip
    r = await api.post(f"{web.api('payments')}/v1/clients/{client_id}/payment-plans", json=plan)
    assert r.status_code == 201, r.text
    clinician = (await api.get(f"{web.api('billing')}/v1/clinicians")).json()["items"][0]["id"]
    items = [{"code": "90837", "fee_cents": 16000, "quantity": 12}]
    estimate = {"client_id": client_id, "clinician_id": clinician, "period_start": "2026-11-01",
                "period_end": "2027-10-31", "items": items}  # fmt: skip
    r = await api.post(f"{web.api('billing')}/v1/good-faith-estimates", json=estimate)
    assert r.status_code == 201, r.text
    gfe = r.json()
    assert (await api.post(f"{web.api('billing')}/v1/good-faith-estimates/{gfe['id']}/share", json={})).is_success

    async def rendered() -> bool:
        got = (await api.get(f"{web.api('billing')}/v1/good-faith-estimates/{gfe['id']}")).json()
        return bool(got["document_id"])

    await eventually(rendered, timeout=180)

    await sign_in(page, a11y, role="client", client=client_id, practice=PORTAL_PRACTICE)
    await a11y.check(page)
    row = page.get_by_role("region", name="Estimates").get_by_role("row").filter(has_text=f"#{gfe['number']}")
    await expect(row).to_contain_text("$1,920.00")
    async with page.expect_download() as info:
        await row.get_by_role("link", name="Download PDF").click()
    assert (await (await info.value).path()).read_bytes()[:4] == b"%PDF"

    await page.get_by_role("link", name="Payment plans").click()
    await expect(page.get_by_role("heading", name="Payment plans", level=1)).to_be_visible()
    section = page.get_by_role("region", name="Plan of $100.01")
    await expect(section).to_contain_text("Active")
    await expect(section.get_by_text("$33.34 on Jan 4, 2027")).to_be_visible()
    schedule = section.get_by_role("table", name="Schedule")
    await expect(schedule.get_by_role("row")).to_have_count(4)
    await expect(schedule.get_by_role("row").nth(3)).to_contain_text("$33.33")
    await a11y.check(page)

    # the nightly run of Jan 4 charges the first installment
    night = {"as_of": "2027-01-04T23:00:00-08:00"}  # it answers when the night's charges are done: be patient
    r = await api.post(f"{web.api('payments')}/v1/autopay/run", json=night, timeout=180)
    assert r.status_code == 200, r.text
    await page.reload()
    await expect(schedule.get_by_role("row").nth(1)).to_contain_text("Paid")
    await expect(section).to_contain_text("Paid so far$33.34")
    await expect(section.get_by_text("$33.34 on Feb 4, 2027")).to_be_visible()
    await a11y.check(page)


async def test_add_card_through_a_setup_intent_and_pay_with_a_new_card(page: Page, a11y: A11y, own: Scene) -> None:
    web, api = own.web, own.api
    client_id = await own.client("Theo", "Laurent")
    first = await shared_bill(own, web, api, client_id, 9000)
    second = await shared_bill(own, web, api, client_id, 7000)
    await sign_in(page, a11y, role="client", client=client_id, practice=PORTAL_PRACTICE)
    await a11y.check(page)

    # Add card: the SetupIntent is confirmed in the browser, so the card's 3-D Secure step shows
    await page.get_by_role("link", name="Cards & autopay").click()
    await a11y.check(page)
    await page.get_by_role("button", name="Add card").click()
    await page.get_by_label("Type your full name to sign").fill("Theo Laurent")
    await page.get_by_label("I have read and agree to this authorization").check()
    await fill_card(page, THREE_D_SECURE)
    await page.get_by_role("button", name="Save card").click()
    await page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure dialog
    await expect(page.get_by_text("Your card was saved.")).to_be_visible()
    await expect(page.get_by_text("Authorization signed by Theo Laurent")).to_be_visible()
    await a11y.check(page)
    [saved] = (await api.get(f"{web.api('payments')}/v1/clients/{client_id}/cards")).json()["items"]
    assert saved["last4"] == "3155" and saved["authorized"]

    # Pay the first bill with a new card, not kept: it is charged, then not left on file
    await page.goto(f"/portal/bills/{first['id']}/pay")
    await expect(page.get_by_role("heading", name=f"Pay bill #{first['number']}")).to_be_visible()
    await page.get_by_label("A new card").check()
    await page.get_by_label("Name on card").fill("Theo Laurent")
    await fill_card(page, VISA)
    await a11y.check(page)
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("status")).to_contain_text("Your payment of $90.00", timeout=30_000)
    await a11y.check(page)
    [payment] = (await api.get(f"{web.api('payments')}/v1/payments", params={"bill_id": first["id"]})).json()["items"]
    assert (payment["status"], payment["card_last4"], payment["online"]) == ("succeeded", "4242", True)
    cards = (await api.get(f"{web.api('payments')}/v1/clients/{client_id}/cards")).json()["items"]
    assert [c["last4"] for c in cards] == ["3155"]

    # the second with a new card kept on file, its authorization signed with the name typed
    await page.goto(f"/portal/bills/{second['id']}/pay")
    await page.get_by_label("A new card").check()
    await page.get_by_label("Name on card").fill("Theo Laurent")
    await page.get_by_label("Keep this card on file for later payments").check()
    await fill_card(page, VISA)
    await a11y.check(page)
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("status")).to_contain_text("Your payment of $70.00", timeout=30_000)
    await page.goto("/portal/cards")
    await expect(page.get_by_role("button", name="Remove the card ending 4242")).to_be_visible()
    await a11y.check(page)

    async def both_paid() -> bool:
        for bill in (first, second):
            got = (await api.get(f"{web.api('billing')}/v1/bills/{bill['id']}")).json()
            if got["status"] != "paid":
                return False
        return True

    await eventually(both_paid, timeout=60)
