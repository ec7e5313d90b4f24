"""The pay page of the emailed link: bill number + access code, that bill only, wrong codes
rate-limited and indistinguishable from unknown bills."""

import httpx
import pytest
from sqlalchemy import select

from services.payments.db import bills
from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import DECLINES, bill_event, new_id, payment_method, snapshot, staff

pytestmark = pytest.mark.integration


async def published_bill(svc, publish, number: int, code: str, owes: int = 8000):
    practice, client, bill_id = new_id("p"), new_id("c"), new_id("bill")
    bill = snapshot(bill_id, client, client_owes=owes, number=number, access_code=code)
    await publish(topics.BILLING, bill_event("BillCreated", practice, bill), key=client, settings=svc.settings)
    return practice, client, bill_id


async def projected(svc, bill_id: str) -> bool:
    async with svc.db.transaction() as session:
        return bool(await session.scalar(select(bills.c.id).where(bills.c.id == bill_id)))


async def test_pay_page_renders_with_the_bill_number(http) -> None:
    r = await http.get("/pay", params={"bill": 1042})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'value="1042"' in r.text and "/v1/public/pay" in r.text


async def test_paying_a_bill_with_its_number_and_code(svc, http, publish) -> None:
    number = int(new_id("n").split("-")[1], 16) % 10**8
    practice, _, bill_id = await published_bill(svc, publish, number, "481516")
    body = {"bill_number": number, "access_code": "481516", "amount_cents": 3000,
            "stripe_payment_method_id": await payment_method(svc.settings)}  # fmt: skip
    await eventually(lambda: projected(svc, bill_id))
    r = await http.post("/v1/public/pay", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded" and r.json()["card_last4"] == "4242" and r.json()["bill_number"] == number
    payments = (await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))).json()["items"]
    assert payments[0]["allocations"] == [{"bill_id": bill_id, "amount_cents": 3000}] and payments[0]["online"]
    over = await http.post("/v1/public/pay", json={**body, "amount_cents": 6000})
    assert over.status_code == 422 and over.json()["error"]["code"] == "exceeds_balance"
    declined = await http.post("/v1/public/pay", json={**body, "stripe_payment_method_id": await payment_method(
        svc.settings, DECLINES)})  # fmt: skip
    assert declined.status_code == 402


async def test_wrong_codes_look_like_unknown_bills_and_are_locked_out(svc, app, publish) -> None:
    number = int(new_id("n").split("-")[1], 16) % 10**8
    _, _, bill_id = await published_bill(svc, publish, number, "111111")
    await eventually(lambda: projected(svc, bill_id))
    pm = await payment_method(svc.settings)
    wrong = {"bill_number": number, "access_code": "999999", "stripe_payment_method_id": pm}
    unknown = {**wrong, "bill_number": number + 1}
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))  # a requester of its own
    async with httpx.AsyncClient(transport=transport, base_url="http://payments") as guesser:
        a = await guesser.post("/v1/public/pay", json=wrong)
        b = await guesser.post("/v1/public/pay", json=unknown)
        assert a.status_code == b.status_code == 404 and a.json() == b.json()
        for _ in range(svc.settings.pay_page_max_failures):
            await guesser.post("/v1/public/pay", json=wrong)
        right = {**wrong, "access_code": "111111"}
        locked = await guesser.post("/v1/public/pay", json=right)
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
