"""The other staff pages: Billing Settings, a client's billing profile, payouts from Headway
with their reconciliation, and the email log; errors shown in words; 375 px wide."""

from playwright.async_api import Page, expect

from tests.browser.conftest import A11y
from tests.browser.scene import Scene


async def test_settings_profile_payouts_and_email_log(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    await page.get_by_role("link", name="Billing Settings").click()
    await expect(page.get_by_role("heading", name="Billing Settings")).to_be_visible()
    await a11y.check(page)
    await page.get_by_label("Autopay time").fill("01:15")
    await page.get_by_label("No-show fee").fill("75.00")
    await page.get_by_role("button", name="Save Settings").click()
    await expect(page.get_by_role("status")).to_have_text("Settings saved.")
    await expect(page.get_by_label("No-show fee")).to_have_value("75.00")
    await page.get_by_label("No-show fee").fill("seventy")
    await page.get_by_role("button", name="Save Settings").click()
    await expect(page.get_by_role("alert")).to_have_text("No-show fee: “seventy” is not an amount")
    await a11y.check(page)

    client_id = await scene.client("Morgan", "Okafor", insurance=True)
    await page.goto(f"/clients/{client_id}/profile")
    await a11y.check(page)
    await page.get_by_label("Insurance", exact=True).check()
    await page.get_by_label("Co-insurance").fill("20")
    await page.get_by_role("button", name="Save Profile").click()
    await expect(page.get_by_role("status")).to_have_text("Billing profile saved.")
    await expect(page.get_by_label("Co-insurance")).to_have_value("20")
    await a11y.check(page)

    session_id = await scene.session(client_id, fee_cents=11000, payer="headway")
    await page.get_by_role("link", name="Payouts").click()
    await a11y.check(page)
    await scene.expected_payout(session_id)
    await page.get_by_label("Paid by").select_option("headway")
    await page.get_by_label("Payout reference").fill("HW-2026-11")
    await page.get_by_label("Session, line 1").fill(session_id)
    await page.get_by_label("Amount, line 1").fill("100.00")
    await page.get_by_role("button", name="Record Payout").click()
    await expect(page.get_by_role("status")).to_have_text("Payout recorded.")
    row = page.get_by_role("region", name="Reconciliation").get_by_role("row").filter(has_text=session_id)
    await expect(row).to_contain_text("$110.00")
    await expect(row).to_contain_text("$100.00")
    await expect(row).to_contain_text("−$10.00")
    await expect(page.get_by_role("region", name="Payouts received")).to_contain_text("HW-2026-11")
    await a11y.check(page)
    await page.get_by_label("Payout reference").fill("HW-2026-11")
    await page.get_by_label("Session, line 1").fill(session_id)
    await page.get_by_label("Amount, line 1").fill("100.00")
    await page.get_by_role("button", name="Record Payout").click()
    await expect(page.get_by_role("alert")).to_contain_text("already recorded")
    await a11y.check(page)

    bill = await scene.bill(client_id, await scene.session(client_id, fee_cents=9000), responsibility="client")
    r = await scene.api.post(f"{scene.web.api('billing')}/v1/bills/{bill['id']}/share", json={})
    assert r.status_code == 200, r.text
    await page.get_by_role("link", name="Emails").click()
    await a11y.check(page)
    await page.get_by_label("Client").select_option(client_id)
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("row").filter(has_text=f"{client_id}@example.com").first).to_be_visible()
    await a11y.check(page)


async def test_pages_work_at_375_px(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    """A phone's width: nothing wider than the screen except tables, which scroll in their box."""
    page = staff_page
    await page.set_viewport_size({"width": 375, "height": 800})
    client_id = await scene.client("Quinn", "Levi")
    bill = await scene.bill(client_id, await scene.session(client_id, fee_cents=9900))
    for path in ("/billing", f"/bills/{bill['id']}", f"/bills/new?client_id={client_id}", "/settings",
                 f"/clients/{client_id}/billing", "/payouts", "/emails"):  # fmt: skip
        await page.goto(path)
        await a11y.check(page)
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a 375 px screen"
    await page.goto(f"/bills/{bill['id']}")
    await page.get_by_role("button", name="Add Payment").click()
    # The dialog is taller than a phone's screen: its button must be reachable by scrolling it.
    submit = page.get_by_role("dialog", name="Add Payment").get_by_role("button", name="Add Payment")
    await submit.scroll_into_view_if_needed()
    await expect(submit).to_be_in_viewport()
    await a11y.check(page)
