"""The pay page of the emailed link, against the real Postgres, Kafka and localstripe: bill
number + access code open that bill only; guesses and card tests are bounded and counted
atomically; a PaymentIntent confirmed in the browser is recorded once, whoever settles it."""

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from services.payments.db import bills, pay_attempts, pay_page_counters, payments
from services.payments.pay_limits import take_try
from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import (
    DECLINES,
    bill_event,
    new_id,
    payment_events,
    payment_method,
    snapshot,
    staff,
    stripe_client,
)
from tests.integration.payments.test_stripe import signed

pytestmark = pytest.mark.integration


def fresh_number() -> int:
    return int(new_id("n").split("-")[1], 16) % 10**8 + 1


async def published_bill(svc, publish, code: str = "481516", owes: int = 8000):
    practice, client, bill_id, number = new_id("p"), new_id("c"), new_id("bill"), fresh_number()
    bill = snapshot(bill_id, client, client_owes=owes, number=number, access_code=code)
    bill["practice"] = {"name": "Rivers Edge Counseling"}
    await publish(topics.BILLING, bill_event("BillCreated", practice, bill), key=client, settings=svc.settings)
    await eventually(lambda: projected(svc, bill_id))
    return practice, client, bill_id, number


async def projected(svc, bill_id: str) -> bool:
    async with svc.db.transaction() as session:
        return bool(await session.scalar(select(bills.c.id).where(bills.c.id == bill_id)))


def requester(app, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://payments")


@contextlib.contextmanager
def settings_changed(svc, **values) -> Iterator[None]:
    old = {k: getattr(svc.settings, k) for k in values}
    for k, v in values.items():
        setattr(svc.settings, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(svc.settings, k, v)


async def confirm_in_browser(http, secret: str, card: str, settings) -> httpx.Response:
    """What the page's Stripe.js does (localstripe compat): a card payment method, then confirm."""
    pm = await payment_method(settings, card)
    intent_id = secret.split("_secret_")[0]
    return await http.post(f"/_localstripe/payment_intents/{intent_id}/confirm",
                           json={"client_secret": secret, "payment_method": pm})  # fmt: skip


async def payments_of(svc, bill_id: str) -> list:
    async with svc.db.transaction() as session:
        return (await session.execute(select(payments).join(pay_attempts, pay_attempts.c.id == payments.c.id)
                                      .where(pay_attempts.c.bill_id == bill_id))).all()  # fmt: skip


async def test_pay_page_carries_the_practice_and_loads_stripe_js(http, svc) -> None:
    r = await http.get("/pay", params={"practice": "practice-rivers-edge", "bill": 1042})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'value="1042"' in r.text and '"practice-rivers-edge"' in r.text
    assert svc.settings.stripe_js_url in r.text and "/_localstripe/compat.js" in r.text
    assert "confirmCardPayment" in r.text and "/v1/public/pay/intents" in r.text
    js = await http.get("/_localstripe/compat.js")
    assert js.status_code == 200 and "createPaymentMethod" in js.text


async def test_lookup_shows_practice_and_amount_due_and_wrong_unknown_locked_look_alike(svc, app, publish) -> None:
    practice, _, _, number = await published_bill(svc, publish, code="111111")
    right = {"practice_id": practice, "bill_number": number, "access_code": "111111"}
    async with requester(app, "203.0.113.21") as guesser:
        ok = await guesser.post("/v1/public/pay/lookup", json=right)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"practice_name": "Rivers Edge Counseling", "bill_number": number,
                             "amount_due_cents": 8000, "currency": "USD"}  # fmt: skip
        wrong = await guesser.post("/v1/public/pay/lookup", json={**right, "access_code": "999999"})
        unknown = await guesser.post("/v1/public/pay/lookup", json={**right, "bill_number": number + 1})
        other_practice = await guesser.post("/v1/public/pay/lookup", json={**right, "practice_id": new_id("p")})
        for _ in range(svc.settings.pay_page_max_failures):
            await guesser.post("/v1/public/pay/lookup", json={**right, "access_code": "999998"})
        locked = await guesser.post("/v1/public/pay/lookup", json=right)
    answers = [wrong, unknown, other_practice, locked]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1


async def test_a_parallel_burst_of_guesses_gets_no_more_tries_than_a_sequence(svc, app, publish) -> None:
    # The counter itself: 40 tries at once on a limit of 5 -> exactly 5 allowed.
    key = new_id("burst")
    allowed = await asyncio.gather(*(take_try(svc.db, {key: 5}, 900) for _ in range(40)))
    assert allowed.count(True) == 5
    # Through HTTP: a burst of wrong codes is counted try by try, and the right code is then refused.
    practice, _, _, number = await published_bill(svc, publish, code="222222")
    wrong = {"practice_id": practice, "bill_number": number, "access_code": "000000"}
    burst = 3 * svc.settings.pay_page_max_failures
    async with requester(app, "203.0.113.22") as guesser:
        answers = await asyncio.gather(*(guesser.post("/v1/public/pay/lookup", json=wrong) for _ in range(burst)))
        assert {a.status_code for a in answers} == {404}
    async with requester(app, "203.0.113.23") as owner:  # another IP: only the bill's own lock applies
        refused = await owner.post("/v1/public/pay/lookup", json={**wrong, "access_code": "222222"})
    assert refused.status_code == 404
    async with svc.db.transaction() as session:
        count = await session.scalar(
            select(pay_page_counters.c.count).where(pay_page_counters.c.key == f"code:{practice}:{number}")
        )
    assert count == svc.settings.pay_page_max_failures  # as many as a sequence would have had judged


async def test_ip_lockout_uses_the_real_client_ip_only_behind_a_trusted_proxy(svc, app, publish) -> None:
    bills_ = [await published_bill(svc, publish, code="333333") for _ in range(3)]
    with settings_changed(svc, pay_page_max_failures_per_ip=2, trusted_proxies="198.51.100.0/24"):
        # An untrusted peer cannot dodge its own lockout by forging X-Forwarded-For.
        async with requester(app, "192.0.2.50") as direct:
            for i, (practice, _, _, number) in enumerate(bills_[:2]):
                body = {"practice_id": practice, "bill_number": number, "access_code": "000000"}
                await direct.post("/v1/public/pay/lookup", json=body, headers={"X-Forwarded-For": f"10.9.9.{i}"})
            practice, _, _, number = bills_[2]
            right = {"practice_id": practice, "bill_number": number, "access_code": "333333"}
            forged = await direct.post("/v1/public/pay/lookup", json=right, headers={"X-Forwarded-For": "10.9.9.9"})
            assert forged.status_code == 404
        # Behind the trusted load balancer each client is counted as itself.
        async with requester(app, "198.51.100.7") as balancer:
            for practice, _, _, number in bills_[:2]:
                body = {"practice_id": practice, "bill_number": number, "access_code": "000000"}
                await balancer.post("/v1/public/pay/lookup", json=body, headers={"X-Forwarded-For": "203.0.113.80"})
            locked = await balancer.post("/v1/public/pay/lookup", json=right,
                                         headers={"X-Forwarded-For": "203.0.113.80"})  # fmt: skip
            other = await balancer.post("/v1/public/pay/lookup", json=right,
                                        headers={"X-Forwarded-For": "203.0.113.81"})  # fmt: skip
    assert locked.status_code == 404 and other.status_code == 200


async def test_intent_confirmed_in_the_browser_is_recorded_once(svc, http, publish) -> None:
    practice, client, bill_id, number = await published_bill(svc, publish)
    creds = {"practice_id": practice, "bill_number": number, "access_code": "481516"}
    started = await http.post("/v1/public/pay/intents", json={**creds, "amount_cents": 3000})
    assert started.status_code == 201, started.text
    intent = started.json()
    assert intent["amount_cents"] == 3000 and intent["client_secret"].startswith("pi_")
    pending = await http.post(f"/v1/public/pay/intents/{intent['payment_id']}/refresh")
    assert pending.json()["status"] == "pending" and await payments_of(svc, bill_id) == []

    confirmed = await confirm_in_browser(http, intent["client_secret"], "4242424242424242", svc.settings)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded"
    # The page's read-back, a retry of it, and Stripe's webhook, all at once: one payment.
    stripe_intent = await stripe_client(svc.settings).v1.payment_intents.retrieve_async(confirmed.json()["id"])
    payload, headers = signed(svc.settings, "payment_intent.succeeded", stripe_intent.to_dict())
    answers = await asyncio.gather(
        *(http.post(f"/v1/public/pay/intents/{intent['payment_id']}/refresh") for _ in range(3)),
        http.post("/v1/stripe/webhook", content=payload, headers=headers),
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert answers[0].json()["status"] == "succeeded" and answers[0].json()["card_last4"] == "4242"
    [paid] = await payments_of(svc, bill_id)
    assert paid.id == intent["payment_id"] and paid.amount_cents == 3000 and paid.status == "succeeded"
    listed = (await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))).json()["items"]
    assert [p["allocations"] for p in listed] == [[{"bill_id": bill_id, "amount_cents": 3000}]]
    events = await payment_events(
        svc.settings, client, lambda es: any(e["event_type"] == "PaymentRecorded" for e in es)
    )
    assert [e["event_type"] for e in events].count("PaymentRecorded") == 1
    lookup = await http.post("/v1/public/pay/lookup", json=creds)
    assert lookup.json()["amount_due_cents"] == 5000


async def test_a_declined_card_records_nothing_emails_no_one_and_its_intent_is_cancelled(svc, http, publish) -> None:
    practice, client, bill_id, number = await published_bill(svc, publish)
    creds = {"practice_id": practice, "bill_number": number, "access_code": "481516"}
    intent = (await http.post("/v1/public/pay/intents", json={**creds, "amount_cents": 8000})).json()
    declined = await confirm_in_browser(http, intent["client_secret"], DECLINES, svc.settings)
    assert declined.status_code == 402
    outcome = (await http.post(f"/v1/public/pay/intents/{intent['payment_id']}/refresh")).json()
    assert outcome["status"] == "failed" and outcome["message"]
    stripe_intent = await stripe_client(svc.settings).v1.payment_intents.retrieve_async(intent["client_secret"].split(
        "_secret_")[0])  # fmt: skip
    assert stripe_intent.status == "canceled"  # no second card can be tried on it
    # Then the client pays with a good card: its PaymentRecorded is the marker that the
    # decline's events would have been published before it.
    retry = (await http.post("/v1/public/pay/intents", json={**creds, "amount_cents": 8000})).json()
    await confirm_in_browser(http, retry["client_secret"], "4242424242424242", svc.settings)
    assert (await http.post(f"/v1/public/pay/intents/{retry['payment_id']}/refresh")).json()["status"] == "succeeded"
    events = await payment_events(
        svc.settings, client, lambda es: any(e["event_type"] == "PaymentRecorded" for e in es)
    )
    assert "PaymentFailed" not in [e["event_type"] for e in events]
    assert [p.id for p in await payments_of(svc, bill_id)] == [retry["payment_id"]]


async def test_contract_endpoint_pays_refuses_over_and_declines_without_failure_events(svc, http, publish) -> None:
    practice, client, bill_id, number = await published_bill(svc, publish)
    body = {"bill_number": number, "access_code": "481516", "amount_cents": 3000, "practice_id": practice,
            "stripe_payment_method_id": await payment_method(svc.settings, DECLINES)}  # fmt: skip
    declined = await http.post("/v1/public/pay", json=body)
    assert declined.status_code == 402 and declined.json()["error"]["code"] == "card_declined"
    over = await http.post("/v1/public/pay", json={**body, "amount_cents": 9000})
    assert over.status_code == 422 and over.json()["error"]["code"] == "exceeds_balance"
    good = {**body, "stripe_payment_method_id": await payment_method(svc.settings)}
    key = {"Idempotency-Key": new_id("k")}
    r = await http.post("/v1/public/pay", json=good, headers=key)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded" and r.json()["card_last4"] == "4242" and r.json()["bill_number"] == number
    again = await http.post("/v1/public/pay", json=good, headers=key)
    assert again.status_code == 201 and again.json()["id"] == r.json()["id"]
    assert len(await payments_of(svc, bill_id)) == 1
    events = await payment_events(
        svc.settings, client, lambda es: any(e["event_type"] == "PaymentRecorded" for e in es)
    )
    assert "PaymentFailed" not in [e["event_type"] for e in events]
    # Without the practice (older links) the bill is still found by its number and code.
    del good["practice_id"]
    assert (await http.post("/v1/public/pay", json={**good, "amount_cents": 1000})).status_code == 201


@pytest.mark.parametrize("amount", [None, "50", "$50", 50.5, 0, -100])
async def test_an_amount_that_is_not_whole_cents_is_refused_never_the_whole_balance(svc, http, publish, amount) -> None:
    practice, _, bill_id, number = await published_bill(svc, publish)
    body = {"practice_id": practice, "bill_number": number, "access_code": "481516", "amount_cents": amount}
    contract = await http.post("/v1/public/pay", json={**body, "stripe_payment_method_id": "pm_card_visa"})
    intent = await http.post("/v1/public/pay/intents", json=body)
    assert contract.status_code == intent.status_code == 422
    assert "amount_cents" in contract.text
    assert await payments_of(svc, bill_id) == []


async def test_card_testing_is_bounded_per_bill_and_per_ip(svc, app, publish) -> None:
    practice, _, _, number = await published_bill(svc, publish)
    creds = {"practice_id": practice, "bill_number": number, "access_code": "481516", "amount_cents": 100}
    limit = svc.settings.pay_page_max_payment_attempts
    async with requester(app, "203.0.113.40") as tester:
        answers = await asyncio.gather(*(tester.post("/v1/public/pay/intents", json=creds) for _ in range(limit + 3)))
    assert sorted(a.status_code for a in answers) == [201] * limit + [429] * 3
    with settings_changed(svc, pay_page_max_payment_attempts_per_ip=2):
        others = [await published_bill(svc, publish) for _ in range(3)]
        async with requester(app, "203.0.113.41") as tester:
            codes = []
            for p, _, _, n in others:
                r = await tester.post("/v1/public/pay/intents", json={**creds, "practice_id": p, "bill_number": n})
                codes.append(r.status_code)
    assert codes == [201, 201, 429]
    async with svc.db.transaction() as session:
        started = await session.scalar(select(func.count()).select_from(pay_attempts).where(
            pay_attempts.c.ip == "203.0.113.40"))  # fmt: skip
    assert started == limit


async def attempt_status(svc, attempt_id: str) -> str:
    async with svc.db.transaction() as session:
        return await session.scalar(select(pay_attempts.c.status).where(pay_attempts.c.id == attempt_id))


async def test_the_reconciler_records_a_confirmed_intent_nobody_read_back(svc, http, publish) -> None:
    """The page was closed after confirming and the webhook was lost: the reconciler asks Stripe."""
    practice, _, bill_id, number = await published_bill(svc, publish)
    creds = {"practice_id": practice, "bill_number": number, "access_code": "481516"}
    intent = (await http.post("/v1/public/pay/intents", json={**creds, "amount_cents": 2500})).json()
    await confirm_in_browser(http, intent["client_secret"], "4242424242424242", svc.settings)

    async def succeeded() -> bool:
        return await attempt_status(svc, intent["payment_id"]) == "succeeded"

    await eventually(succeeded)
    [paid] = await payments_of(svc, bill_id)
    assert paid.amount_cents == 2500


async def test_an_intent_left_unconfirmed_is_cancelled_after_its_ttl(svc, http, publish) -> None:
    practice, _, bill_id, number = await published_bill(svc, publish)
    creds = {"practice_id": practice, "bill_number": number, "access_code": "481516"}
    with settings_changed(svc, pay_page_intent_ttl_s=0):
        intent = (await http.post("/v1/public/pay/intents", json={**creds, "amount_cents": 2500})).json()

        async def failed() -> bool:
            return await attempt_status(svc, intent["payment_id"]) == "failed"

        await eventually(failed)
    stripe_intent = await stripe_client(svc.settings).v1.payment_intents.retrieve_async(
        intent["client_secret"].split("_secret_")[0]
    )
    assert stripe_intent.status == "canceled" and await payments_of(svc, bill_id) == []
