"""Sign-in: the local picker, the identity provider's token, sign-out, and the CSRF token."""

import httpx
from playwright.async_api import Page, expect

from shared.auth import issue_token
from tests.browser.conftest import PRACTICE, A11y, WebStack, sign_in


async def test_staff_dev_sign_in_lands_on_client_billing(page: Page, a11y: A11y) -> None:
    await sign_in(page, a11y)
    await expect(page.get_by_role("heading", name="Client Billing", level=1)).to_be_visible()
    for section in ("Unbilled", "Open", "Paid"):
        await expect(page.get_by_role("region", name=section)).to_be_visible()
    await a11y.check(page)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "tb_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await a11y.check(page)
    await page.goto("/billing")
    await expect(page).to_have_url(f"{page.url.split('/sign-in')[0]}/sign-in")
    await a11y.check(page)


async def test_identity_provider_token_signs_in(page: Page, a11y: A11y) -> None:
    await page.goto(f"/sign-in?token={issue_token(PRACTICE, 'staff')}")
    await expect(page.get_by_role("heading", name="Client Billing")).to_be_visible()
    await a11y.check(page)
    await page.context.clear_cookies()
    await page.goto(f"/sign-in?token={issue_token(PRACTICE, 'staff', secret='another-secret-another-secret-32b')}")
    await expect(page.get_by_role("alert")).to_contain_text("invalid")
    await a11y.check(page)


async def test_a_form_without_its_csrf_token_is_refused(web: WebStack) -> None:
    token = issue_token(PRACTICE, "staff")
    async with httpx.AsyncClient(base_url=web.url, cookies={"tb_session": token}, timeout=30) as http:
        refused = await http.post("/sign-out", data={})
        assert refused.status_code == 403
        page = await http.get("/dev/sign-in")
        csrf = page.cookies.get("csrftoken") or http.cookies.get("csrftoken")
        accepted = await http.post("/sign-out", data={"csrftoken": csrf})
        assert accepted.status_code == 303
