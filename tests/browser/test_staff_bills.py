"""The help article, end to end as a biller: a completed session under Unbilled → a new bill
with an edited price and a comment → Create Bill → the PDF downloads → Share → Add Payment
(cash) → Paid → Cancel refused while the payment stands → Refund → Open again → Cancel."""

import asyncio
import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.conftest import A11y, WebStack
from tests.browser.scene import Scene


async def test_bill_from_unbilled_to_paid_refunded_and_cancelled(
    staff_page: Page, a11y: A11y, web: WebStack, scene: Scene, api
) -> None:
    page = staff_page
    client_id = await scene.client("Avery", "Stone")
    session_id = await scene.session(client_id, fee_cents=16000)
    await scene.unbilled(session_id)

    await page.goto(f"/billing?client_id={client_id}")
    unbilled = page.get_by_role("region", name="Unbilled")
    await expect(unbilled).to_contain_text("Avery Stone")
    await expect(unbilled).to_contain_text("$160.00")
    await a11y.check(page)
    await unbilled.get_by_role("link", name="New bill for Avery Stone, Nov 2, 2026").click()

    await expect(page.get_by_role("heading", name="New Bill")).to_be_visible()
    await a11y.check(page)
    await expect(page.get_by_role("checkbox", name=re.compile("Nov 2, 2026"))).to_be_checked()
    await page.get_by_label("Price, Nov 2, 2026 line 1").fill("150.00")
    await page.get_by_label("Comments").fill("Sliding scale, as agreed")
    await page.get_by_role("button", name="Create Bill").click()

    await expect(page.get_by_role("heading", name=re.compile(r"Bill #\d+"))).to_be_visible()
    await expect(page.locator("#bill-status")).to_have_text("Open")
    await expect(page.get_by_text("Sliding scale, as agreed")).to_be_visible()
    await expect(page.locator("#bill-balance")).to_have_text("$150.00")
    clock = page.get_by_role("img", name=re.compile("Share scheduled for"))
    await expect(clock).to_have_attribute("title", re.compile(r"\d{4}, \d{1,2}:\d{2} (AM|PM) P[SD]T"))
    download_link = page.get_by_role("link", name="Download PDF")
    await expect(download_link).to_be_visible(timeout=180_000)
    await a11y.check(page)
    async with page.expect_download() as info:
        await download_link.click()
    download = await info.value
    path = await download.path()
    assert (await asyncio.to_thread(Path(path).read_bytes)).startswith(b"%PDF-")

    await page.get_by_role("button", name="Share").click()
    await expect(page.get_by_text("Shared", exact=True)).to_be_visible()
    await a11y.check(page)

    await page.get_by_role("button", name="Add Payment").click()
    dialog = page.get_by_role("dialog", name="Add Payment")
    await expect(dialog).to_be_visible()
    await a11y.check(page)
    await dialog.get_by_label("Cash/Check").check()
    await expect(dialog.get_by_label("Amount")).to_have_value("150.00")
    await dialog.get_by_label("Notes").fill("Paid at the front desk")
    await dialog.get_by_role("button", name="Add Payment").click()
    await expect(page.locator("#bill-status")).to_have_text("Paid", timeout=60_000)
    await expect(page.locator("#bill-balance")).to_have_text("$0.00")
    await a11y.check(page)

    await page.get_by_role("button", name="...").click()
    await page.get_by_role("menuitem", name="Cancel").click()
    await page.get_by_role("dialog", name=re.compile("Cancel bill")).get_by_role("button", name="Cancel Bill").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "This bill can't be cancelled: refund the payments on this bill before cancelling it."
    )
    await a11y.check(page)

    await page.get_by_role("button", name=re.compile("^Refund")).click()
    refund = page.get_by_role("dialog", name=re.compile("Refund"))
    await expect(refund.get_by_label("Amount")).to_have_value("150.00")
    await refund.get_by_role("button", name="Refund").click()
    await expect(page.locator("#bill-status")).to_have_text("Open", timeout=60_000)
    await expect(page.locator("#bill-balance")).to_have_text("$150.00")
    await a11y.check(page)

    await page.get_by_role("button", name="...").click()
    await page.get_by_role("menuitem", name="Cancel").click()
    await page.get_by_role("dialog", name=re.compile("Cancel bill")).get_by_role("button", name="Cancel Bill").click()
    await expect(page.locator("#bill-status")).to_have_text("Cancelled")
    await a11y.check(page)
    await page.goto(f"/billing?client_id={client_id}")
    await expect(page.get_by_role("region", name="Unbilled")).to_contain_text("Avery Stone")
    await a11y.check(page)
