"""Issue 13's features in the staff console: a Good Faith Estimate from the New... menu (its PDF,
Share, the Documents tab, and by how much the client's bills exceed it), and adjustments on the
bill screen (write-off and discount through the Add Adjustment dialog, the list, Reverse)."""

import re

from playwright.async_api import Page, expect

from tests.browser.conftest import A11y
from tests.browser.scene import Scene


async def test_good_faith_estimate_from_the_new_menu(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    client_id = await scene.client("Noor", "Haddad")
    session_id = await scene.session(client_id, date="2026-11-02", fee_cents=60000)
    await scene.unbilled(session_id)  # the client and the clinician are known to billing

    await page.goto(f"/clients/{client_id}/billing")
    await a11y.check(page)
    await page.get_by_role("button", name="New...").click()
    await page.get_by_role("menuitem", name="Good Faith Estimate").click()
    await expect(page.get_by_role("heading", name="New Good Faith Estimate")).to_be_visible()
    await expect(page.get_by_label("Client")).to_have_value(client_id)
    await a11y.check(page)
    await page.get_by_label("Period start", exact=True).fill("2026-11-01")
    await page.get_by_label("Period end", exact=True).fill("2027-10-31")
    await page.get_by_label("Service code, item 1").fill("90837")
    await page.get_by_label("Description, item 1").fill("Psychotherapy, 60 minutes")
    await page.get_by_label("Fee, item 1").fill("160")
    await page.get_by_label("Quantity, item 1").fill("1")
    await page.get_by_label("Diagnosis codes").fill("F41.1")
    await page.get_by_role("button", name="Create Good Faith Estimate").click()

    await expect(page.get_by_role("heading", name=re.compile(r"Good Faith Estimate #\d+"))).to_be_visible()
    number = (await page.get_by_role("heading", level=1).text_content() or "").split("#")[1]
    await expect(page.get_by_role("row").filter(has_text="90837")).to_contain_text("$160.00")
    await expect(page.locator("#estimate-total")).to_have_text("$160.00")
    await expect(page.locator("#estimate-exceeds")).to_have_text("$0.00")
    await expect(page.get_by_role("link", name="Download PDF")).to_be_visible(timeout=180_000)
    await a11y.check(page)
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download PDF").click()
    download = await info.value
    assert download.suggested_filename == f"estimate-{number}.pdf"
    assert (await download.path()).read_bytes()[:4] == b"%PDF"
    await page.get_by_role("button", name="Share").click()
    await expect(page.get_by_role("status")).to_have_text("Good Faith Estimate shared.")
    await expect(page.get_by_text("Shared", exact=True)).to_be_visible()
    await a11y.check(page)

    # a bill of $600 in the period: $440 above the estimate, past the $400 the client may dispute
    r = await scene.api.post(
        f"{scene.web.api('billing')}/v1/bills", json={"client_id": client_id, "session_ids": [session_id]}
    )
    assert r.status_code == 201 and r.json()["warnings"][0]["code"] == "good_faith_estimate_exceeded", r.text
    await page.reload()
    await expect(page.get_by_role("alert")).to_contain_text("exceed the estimate by $440.00")
    await expect(page.locator("#estimate-billed")).to_have_text("$600.00")
    await expect(page.locator("#estimate-exceeds")).to_have_text("$440.00")
    await a11y.check(page)

    await page.get_by_role("link", name="Noor Haddad").click()
    await expect(page.get_by_role("link", name=f"Good Faith Estimate #{number}", exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name=f"Download PDF of Good Faith Estimate #{number}")).to_be_visible()
    await a11y.check(page)


async def test_write_off_discount_and_reverse_on_the_bill_screen(staff_page: Page, a11y: A11y, scene: Scene) -> None:
    page = staff_page
    client_id = await scene.client("Ines", "Moreau")
    bill = await scene.bill(client_id, await scene.session(client_id, fee_cents=16000))
    await page.goto(f"/bills/{bill['id']}")
    await expect(page.locator("#bill-status")).to_have_text("Open")
    await a11y.check(page)

    await page.get_by_role("button", name="Add Adjustment").click()
    dialog = page.get_by_role("dialog", name="Add Adjustment")
    await expect(dialog.get_by_label("Amount")).to_have_value("160.00")  # the open balance
    await dialog.get_by_label("Write-off").check()
    await dialog.get_by_label("Amount").fill("40")
    await dialog.get_by_label("Reason").fill("Sliding scale: hardship")
    await a11y.check(page)
    await dialog.get_by_role("button", name="Add Adjustment").click()
    await expect(page.get_by_role("status")).to_have_text("Adjustment added.")
    await expect(page.locator("#bill-balance")).to_have_text("$120.00")
    await expect(page.locator("#bill-adjusted")).to_have_text("$40.00")
    adjustments = page.get_by_role("table", name="Adjustments")
    write_off = adjustments.get_by_role("row").filter(has_text="Write-off")
    await expect(write_off).to_contain_text("Sliding scale: hardship")
    await expect(write_off).to_contain_text("$40.00")
    await expect(write_off).to_contain_text("Standing")
    await a11y.check(page)

    # more than is open is refused in words
    await page.get_by_role("button", name="Add Adjustment").click()
    await dialog.get_by_label("Discount").check()
    await dialog.get_by_label("Amount").fill("500")
    await dialog.get_by_label("Reason").fill("Too much")
    await dialog.get_by_role("button", name="Add Adjustment").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "Adjustment not added: the amount is more than is still owed on this bill"
    )
    await expect(page.locator("#bill-balance")).to_have_text("$120.00")
    await a11y.check(page)

    await page.get_by_role("button", name="Add Adjustment").click()
    await dialog.get_by_label("Discount").check()
    await dialog.get_by_label("Amount").fill("120.00")
    await dialog.get_by_label("Reason").fill("Courtesy discount")
    await dialog.get_by_role("button", name="Add Adjustment").click()
    await expect(page.locator("#bill-status")).to_have_text("Closed")
    await expect(page.locator("#bill-balance")).to_have_text("$0.00")
    await expect(page.get_by_role("button", name="Add Payment")).to_have_count(0)
    await a11y.check(page)

    await page.get_by_role("button", name="Reverse discount of $120.00").click()
    await expect(page.get_by_role("status")).to_have_text("Adjustment reversed.")
    await expect(page.locator("#bill-status")).to_have_text("Open")
    await expect(page.locator("#bill-balance")).to_have_text("$120.00")
    await expect(adjustments.get_by_role("row").filter(has_text="Courtesy discount")).to_contain_text("Reversed")
    await expect(page.get_by_role("button", name="Reverse discount of $120.00")).to_have_count(0)
    await expect(page.get_by_role("button", name="Reverse write-off of $40.00")).to_be_visible()
    await a11y.check(page)
