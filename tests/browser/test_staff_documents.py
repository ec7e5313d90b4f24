"""Statements and superbills from the New... menu, their PDFs and Share; the client's
Billing > Documents tab lists them."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from playwright.async_api import Page, expect

from tests.browser.conftest import PRACTICE_SETTINGS, A11y
from tests.browser.scene import Scene


async def test_statement_and_superbill_for_a_date_range(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    client_id = await scene.client("Casey", "Garcia")
    bill = await scene.bill(client_id, await scene.session(client_id, date="2026-10-12", fee_cents=14000))
    await scene.cash(bill)

    await page.goto(f"/clients/{client_id}/billing")
    await expect(page.get_by_role("link", name=f"Bill #{bill['number']}", exact=True)).to_be_visible()
    await a11y.check(page)
    await page.get_by_role("button", name="New...").click()
    await page.get_by_role("menuitem", name="Statement").click()
    await expect(page.get_by_role("heading", name="New Statement")).to_be_visible()
    await a11y.check(page)
    # a statement lists what happened in the range: the bill was issued today
    today = dt.datetime.now(ZoneInfo(PRACTICE_SETTINGS["timezone"])).date().isoformat()
    await page.get_by_label("Start date").fill("2026-10-01")
    await page.get_by_label("End date").fill(today)
    await page.get_by_label("Comments").fill("For your records")
    await page.get_by_role("button", name="Create Statement").click()

    await expect(page.get_by_role("heading", name=re.compile(r"Statement #\d+"))).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=f"Bill #{bill['number']}").first).to_contain_text("$140.00")
    await expect(page.get_by_role("row", name=re.compile("Closing balance"))).to_contain_text("$0.00")
    await expect(page.get_by_role("link", name="Download PDF")).to_be_visible(timeout=180_000)
    await a11y.check(page)
    await page.get_by_role("button", name="Share").click()
    await expect(page.get_by_text("Shared", exact=True)).to_be_visible()
    await a11y.check(page)

    await page.goto(f"/clients/{client_id}/billing")
    await a11y.check(page)
    await page.get_by_role("button", name="New...").click()
    await page.get_by_role("menuitem", name="Superbill").click()
    await a11y.check(page)
    await page.get_by_label("Start date").fill("2026-10-01")
    await page.get_by_label("End date").fill("2026-10-31")
    await page.get_by_role("button", name="Create Superbill").click()
    await expect(page.get_by_role("heading", name=re.compile(r"Superbill #\d+"))).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="90837")).to_contain_text("$140.00")
    await expect(page.get_by_role("link", name="Download PDF")).to_be_visible(timeout=180_000)
    await a11y.check(page)
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download PDF").click()
    assert (await info.value).suggested_filename.startswith("superbill-")

    await page.get_by_role("link", name="Casey Garcia").click()
    documents = page.get_by_role("table")
    await expect(documents).to_contain_text("Statement #")
    await expect(documents).to_contain_text("Superbill #")
    await a11y.check(page)
