"""Payments on the bill screen beyond cash: an insurance bill with a co-pay and an insurance
payment; a card added through Stripe Elements (localstripe's card form) and charged online,
with its View in Stripe link."""

import re

from playwright.async_api import Page, expect

from tests.browser.conftest import A11y
from tests.browser.scene import Scene
from tests.integration.payments.conftest import payment_method


async def test_insurance_bill_with_copay_and_an_insurance_payment(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    client_id = await scene.client("Jordan", "Park", insurance=True)
    session_id = await scene.session(client_id, fee_cents=20000, payer="insurance")
    await scene.unbilled(session_id)

    await page.goto(f"/bills/new?client_id={client_id}&session_id={session_id}")
    await a11y.check(page)
    await page.get_by_role("group", name="Billing responsibility").get_by_label("Insurance").check()
    await page.get_by_label("Co-pay").fill("30.00")
    await page.get_by_role("button", name="Create Bill").click()

    await expect(page.get_by_role("heading", name=re.compile(r"Bill #\d+"))).to_be_visible()
    facts = page.locator("dl.totals")
    await expect(facts).to_contain_text("Client owes$30.00")
    await expect(facts).to_contain_text("Insurance owes$170.00")
    await a11y.check(page)

    await page.get_by_role("button", name="Add Payment").click()
    dialog = page.get_by_role("dialog", name="Add Payment")
    await dialog.get_by_label("Insurance payment").check()
    await dialog.get_by_label("Cash/Check").check()
    await dialog.get_by_label("Check number").fill("EOB-7781")
    await dialog.get_by_label("Amount").fill("170.00")
    await a11y.check(page)
    await dialog.get_by_role("button", name="Add Payment").click()

    row = page.get_by_role("row").filter(has_text="EOB-7781")
    await expect(row).to_contain_text("Insurance")
    await expect(row).to_contain_text("$170.00")
    await expect(facts).to_contain_text("Paid$170.00", timeout=60_000)
    await a11y.check(page)


async def test_add_card_and_pay_online_then_view_in_stripe(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    client_id = await scene.client("Riley", "Nguyen")
    bill = await scene.bill(client_id, await scene.session(client_id, fee_cents=12500))

    await page.goto(f"/bills/{bill['id']}")
    await a11y.check(page)
    await page.get_by_role("button", name="Add Payment").click()
    dialog = page.get_by_role("dialog", name="Add Payment")
    await dialog.get_by_label("Credit/Debit/HSA Card").check()
    await dialog.get_by_role("button", name="Add Card").click()
    card_form = dialog.locator("form[data-card-setup]")
    # localstripe's stand-in for Stripe Elements: plain inputs named by placeholder
    await card_form.get_by_placeholder("number").fill("4242424242424242")
    await card_form.get_by_placeholder("exp_month").fill("12")
    await card_form.get_by_placeholder("exp_year").fill("34")
    await card_form.get_by_placeholder("cvc").fill("123")
    await card_form.get_by_placeholder("postal_code").fill("97209")
    await card_form.get_by_label(re.compile("authorized the practice")).check()
    await a11y.check(page)
    await card_form.get_by_role("button", name="Save Card").click()
    await expect(dialog.get_by_role("status")).to_have_text("Card saved.", timeout=60_000)  # a shared, busy localstripe
    await expect(dialog.get_by_label("Card", exact=True)).to_contain_text("4242")

    await dialog.get_by_label("Online Payment?").check()
    await dialog.get_by_role("button", name="Add Payment").click()
    await expect(page.locator("#bill-status")).to_have_text("Paid", timeout=60_000)
    stripe_link = page.get_by_role("link", name="View in Stripe")
    await expect(stripe_link).to_have_attribute("href", re.compile(r"^https://dashboard\.stripe\.com/.+/pi_\w+"))
    await a11y.check(page)

    await page.goto(f"/clients/{client_id}/cards")
    await expect(page.get_by_role("cell", name=re.compile("Signed by Riley Nguyen"))).to_be_visible()
    await a11y.check(page)


async def test_start_and_cancel_a_payment_plan(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    client_id = await scene.client("Ana", "Silva")
    bill = await scene.bill(client_id, await scene.session(client_id, fee_cents=10001))
    pm = await payment_method(scene.web.settings)
    card = {"stripe_payment_method_id": pm, "authorization": {"signed_by": "Ana Silva", "method": "portal",
            "signed_at": "2026-11-02T10:00:00Z", "consent_version": "v1"}}  # fmt: skip
    r = await scene.api.post(f"{scene.web.api('payments')}/v1/clients/{client_id}/cards", json=card)
    assert r.status_code == 201, r.text

    await page.goto(f"/clients/{client_id}/cards")
    await expect(page.get_by_label(f"Bill #{bill['number']}, balance $100.01")).to_be_checked()
    await page.get_by_label("Installments").fill("3")
    await page.get_by_label("Frequency").select_option("monthly")
    await page.get_by_label("First payment date").fill("2027-01-04")
    await a11y.check(page)
    await page.get_by_role("button", name="Start Payment Plan").click()
    await expect(page.get_by_role("status")).to_have_text("Payment plan started.", timeout=60_000)
    plan = page.get_by_role("table", name="Payment plan of $100.01")
    await expect(plan).to_contain_text("Active")
    await expect(plan.get_by_role("row")).to_have_count(4)
    await expect(plan.get_by_role("row").nth(1)).to_contain_text("$33.34")
    await a11y.check(page)
    await page.get_by_role("button", name="Cancel Plan").click()
    await expect(page.get_by_role("status")).to_have_text("Payment plan cancelled.", timeout=60_000)  # busy machine
    await expect(plan).to_contain_text("Cancelled")
    await a11y.check(page)
