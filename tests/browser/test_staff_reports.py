"""The Reports page: aging, monthly revenue and payments by method or day as Chart.js charts
(served by the web service) beside tables with the figures, a date range (From / To), and the
CSVs, for a practice of its own (the other browser tests' bills would change its totals). The
figures are written by hand from the bills and payment below."""

import csv
import datetime as dt
import io
import re
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Page, expect

from shared.auth import issue_token
from shared.http import UPSTREAM_LIMITS
from tests.browser.conftest import PRACTICE_SETTINGS, A11y, sign_in
from tests.browser.scene import Scene
from tests.conftest import eventually

REPORTS_PRACTICE = "practice-browser-reports"
PACIFIC = ZoneInfo("America/Los_Angeles")


def has_ink(page: Page, selector: str) -> Any:
    """True once the canvas has a drawn (non-transparent) pixel."""
    return page.eval_on_selector(
        selector,
        "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0)",
    )


async def test_reports_page_charts_tables_and_csv(page: Page, a11y: A11y, scene: Scene, publish: Any) -> None:
    web = scene.web
    headers = {"Authorization": f"Bearer {issue_token(REPORTS_PRACTICE, 'staff')}"}
    async with httpx.AsyncClient(timeout=15, headers=headers, limits=UPSTREAM_LIMITS) as api:
        saved = await api.put(
            f"{web.api('billing')}/v1/settings", json={**PRACTICE_SETTINGS, "name": "Reports Practice"}
        )
        assert saved.status_code == 200, saved.text
        own = Scene(publish, web, api, practice=REPORTS_PRACTICE)
        today = dt.datetime.now(PACIFIC).date()
        later = today + dt.timedelta(days=59)  # the first bill 45 days past due then, the second 9
        client_id = await own.client("Avery", "Lindqvist")
        first = await own.bill(
            client_id, await own.session(client_id, fee_cents=16000), due_date=str(today + dt.timedelta(days=14))
        )
        await own.bill(
            client_id, await own.session(client_id, fee_cents=9000), due_date=str(today + dt.timedelta(days=50))
        )
        body = {"client_id": client_id, "bill_id": first["id"], "method": "cash", "amount_cents": 6000,
                "idempotency_key": f"part-{first['id']}"}  # fmt: skip

        async def recorded() -> bool:
            r = await api.post(f"{web.api('payments')}/v1/payments", json=body)
            assert r.status_code in (201, 404), r.text
            return r.status_code == 201

        await eventually(recorded, timeout=60, interval=1)

        async def reports_caught_up() -> Any:
            r = await api.get(f"{web.api('reports')}/v1/reports/aging", params={"as_of": str(later)})
            return r.json()["buckets"] == {"current": 0, "d1_30": 9000, "d31_60": 10000, "d61_90": 0, "d90_plus": 0}

        await eventually(reports_caught_up, timeout=60, interval=0.5)

    await sign_in(page, a11y, practice=REPORTS_PRACTICE)
    await a11y.check(page)
    await page.get_by_role("link", name="Reports").click()
    await expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    await expect(page.get_by_role("link", name="Reports")).to_have_attribute("aria-current", "page")

    aging = page.get_by_role("table", name="Open balances by days past due")
    await expect(aging.get_by_role("row", name="Current").get_by_role("cell")).to_have_text(
        ["$190.00", "$0.00", "$190.00"]
    )
    await expect(aging.get_by_role("row", name="31–60 days")).to_contain_text("$0.00")
    await a11y.check(page)
    await page.get_by_label("As of").fill(str(later))
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_text(f"as of {later.strftime('%b')} {later.day}, {later.year}")).to_be_visible()
    await expect(aging.get_by_role("row", name="Current").get_by_role("cell")).to_have_text(["$0.00", "$0.00", "$0.00"])
    await expect(aging.get_by_role("row", name="1–30 days").get_by_role("cell")).to_have_text(
        ["$90.00", "$0.00", "$90.00"]
    )
    await expect(aging.get_by_role("row", name="31–60 days").get_by_role("cell")).to_have_text(
        ["$100.00", "$0.00", "$100.00"]
    )
    await expect(aging.get_by_role("row", name="61–90 days").get_by_role("cell")).to_have_text(
        ["$0.00", "$0.00", "$0.00"]
    )
    await expect(aging.get_by_role("row", name=re.compile("^Total"))).to_contain_text("$190.00")
    month = f"{today.strftime('%b')} {today.year}"
    revenue = page.get_by_role("table", name="Revenue by month")
    row = revenue.get_by_role("row", name=month)
    await expect(row.get_by_role("cell")).to_have_text(["$250.00", "$60.00", "$0.00", "$190.00"])

    chart = page.get_by_role("img", name="Aging bar chart")
    await expect(chart).to_have_attribute("data-rendered", "2")  # Chart.js drew client and insurance
    await expect(chart).to_have_attribute("aria-label", re.compile(r"31–60 days \$100\.00"))
    await expect(page.get_by_role("img", name="Monthly revenue chart")).to_have_attribute("data-rendered", "3")
    assert await has_ink(page, "#aging-chart") and await has_ink(page, "#revenue-chart")
    await a11y.check(page)

    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download aging CSV").click()
    rows = list(csv.DictReader(io.StringIO((await (await info.value).path()).read_text())))
    assert [(r["client_name"], r["current"], r["d1_30"], r["d31_60"], r["total_cents"]) for r in rows] == [
        ("Avery Lindqvist", "0", "9000", "10000", "19000")
    ]
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download revenue CSV").click()
    rows = list(csv.DictReader(io.StringIO((await (await info.value).path()).read_text())))
    assert [(r["key"], r["billed_cents"], r["collected_cents"]) for r in rows] == [
        (today.strftime("%Y-%m"), "25000", "6000")
    ]

    # payments by method, then by day, over a date range (From / To), and their CSV
    payments = page.get_by_role("table", name="Payments by method")
    await expect(payments.get_by_role("row", name="Cash").get_by_role("cell")).to_have_text(
        ["$60.00", "$0.00", "$60.00", "1"]
    )
    chart = page.get_by_role("img", name=re.compile("^Payments chart by method"))
    await expect(chart).to_have_attribute("data-rendered", "2")  # Chart.js drew payments and refunds
    assert await has_ink(page, "#payments-chart")
    await page.get_by_label("Group payments by").select_option("day")
    await page.get_by_role("button", name="Show").click()
    by_day = page.get_by_role("table", name="Payments by day")
    day = f"{today.strftime('%b')} {today.day}, {today.year}"
    await expect(by_day.get_by_role("row", name=day).get_by_role("cell")).to_have_text(
        ["$60.00", "$0.00", "$60.00", "1"]
    )
    await a11y.check(page)
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download payments CSV").click()
    rows = list(csv.DictReader(io.StringIO((await (await info.value).path()).read_text())))
    assert [(r["key"], r["payments_cents"], r["net_cents"], r["count"]) for r in rows] == [
        (today.isoformat(), "6000", "6000", "1")
    ]
    before = today - dt.timedelta(days=1)
    await page.get_by_label("From", exact=True).fill(str(today - dt.timedelta(days=30)))
    await page.get_by_label("To", exact=True).fill(str(before))
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#report-period")).to_contain_text(f"to {before.strftime('%b')} {before.day}")
    await expect(by_day).to_contain_text("No payments in this period.")
    await expect(revenue).to_contain_text("No bills yet.")
    await a11y.check(page)
    for link in ("Download payments CSV", "Download revenue CSV"):
        async with page.expect_download() as info:
            await page.get_by_role("link", name=link).click()
        assert list(csv.DictReader(io.StringIO((await (await info.value).path()).read_text()))) == [], link
