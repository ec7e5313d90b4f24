"""Money edge cases found by reading the code (issue 11, cases 1-5 and 8), each against the
real Postgres, Kafka and localstripe. Where real Stripe answers in a way localstripe does not
(it accepts every refund), the SDK call is made to answer as Stripe would."""

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select, text

from services.payments import reconciler
from services.payments.db import practices
from services.payments.stripe_gateway import StripeUnavailable
from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import (
    as_client,
    bill_event,
    envelope,
    new_id,
    payment_events,
    payment_method,
    snapshot,
    staff,
)
from tests.integration.payments.test_stripe import add_card, signed, with_bill

pytestmark = pytest.mark.integration


@pytest.fixture
def manual_reconciler(monkeypatch) -> Any:
    """The background reconciler stands still; the test runs passes itself, when it wants."""
    real = reconciler.reconcile_pending

    async def idle(ctx: Any, *, older_than: dt.timedelta) -> int:
        return 0

    monkeypatch.setattr(reconciler, "reconcile_pending", idle)
    return lambda svc: real(svc.payments, older_than=dt.timedelta(0))


def stripe_refuses_refunds(monkeypatch, svc, code: str) -> None:
    """Real Stripe refuses a refund the charge has no room for (localstripe accepts them all)."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise stripe.InvalidRequestError(f"Stripe says: {code}", "amount", code=code)

    monkeypatch.setattr(svc.payments.stripe.client.v1.refunds, "create_async", refuse)


def refund_times_out(monkeypatch, svc) -> Callable[[], None]:
    """Stripe unreachable for our refund calls until the returned function is called."""
    gateway = svc.payments.stripe
    real = gateway.refund

    async def no_answer(**kwargs: Any) -> str:
        raise StripeUnavailable("connection refused")

    monkeypatch.setattr(gateway, "refund", no_answer)
    return lambda: monkeypatch.setattr(gateway, "refund", real)


async def localstripe(svc, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=svc.settings.stripe_api_base) as http:
        r = await http.get(path, headers={"Authorization": f"Bearer {svc.settings.stripe_api_key}"})
        r.raise_for_status()
        return dict(r.json())


async def open_on(http, practice: str, payment_id: str) -> dict[str, Any]:
    return dict((await http.get(f"/v1/payments/{payment_id}", headers=staff(practice))).json())


async def card_payment(svc, http, publish, owes: int) -> tuple[str, str, str, dict[str, Any]]:
    practice, client, bill_id = await with_bill(svc, publish, owes=owes)
    await add_card(svc, http, practice, client)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": owes}
    r = await http.post("/v1/payments", json=body, headers=staff(practice))
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    return practice, client, bill_id, r.json()


async def bill_applied(svc, bill_id: str) -> int:
    async with svc.db.transaction() as session:
        return int(
            await session.scalar(
                text("SELECT coalesce(sum(amount_cents), 0) FROM bill_applications WHERE bill_id = :b"), {"b": bill_id}
            )
        )


async def test_a_stripe_side_refund_settles_our_pending_one_instead_of_being_absorbed(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    """Case 1: our refund is pending (Stripe did not answer), the client is refunded in the
    dashboard; Stripe's charge.refunded must not be absorbed by the pending amount, and the
    retry's `charge_already_refunded` is not a refusal: the books end refunded, the bill open."""
    practice, _, bill_id, payment = await card_payment(svc, http, publish, 10000)
    reachable = refund_times_out(monkeypatch, svc)
    r = await http.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=staff(practice))
    assert r.status_code == 201 and r.json()["status"] == "pending"
    await svc.payments.stripe.client.v1.refunds.create_async({"payment_intent": payment["stripe_payment_intent_id"]})
    charge = await localstripe(svc, f"/v1/charges/{payment['stripe_charge_id']}")
    assert charge["amount_refunded"] == 10000
    payload, headers = signed(svc.settings, "charge.refunded", charge)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    reachable()
    stripe_refuses_refunds(monkeypatch, svc, "charge_already_refunded")
    await manual_reconciler(svc)
    after = await open_on(http, practice, payment["id"])
    assert after["refunded_cents"] == 10000
    assert [r["status"] for r in after["refunds"]] == ["succeeded"]
    assert await bill_applied(svc, bill_id) == 0, "the client was refunded at Stripe: the bill is open again"


async def test_charge_already_refunded_on_the_retry_is_not_a_refusal(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    practice, _, bill_id, payment = await card_payment(svc, http, publish, 6000)
    reachable = refund_times_out(monkeypatch, svc)
    r = await http.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=staff(practice))
    assert r.json()["status"] == "pending"
    reachable()
    stripe_refuses_refunds(monkeypatch, svc, "charge_already_refunded")
    await manual_reconciler(svc)
    after = await open_on(http, practice, payment["id"])
    assert [(r["status"], r["amount_cents"]) for r in after["refunds"]] == [("succeeded", 6000)]
    assert await bill_applied(svc, bill_id) == 0
    charge = {"id": payment["stripe_charge_id"], "object": "charge", "amount": 6000, "currency": "usd",
              "payment_intent": payment["stripe_payment_intent_id"], "amount_refunded": 6000}  # fmt: skip
    payload, headers = signed(svc.settings, "charge.refunded", charge)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    assert (await open_on(http, practice, payment["id"]))["refunded_cents"] == 6000, "not counted twice"


async def test_a_refused_refund_gives_back_at_most_what_is_open_and_the_rest_as_credit(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    """Case 2: while our refund was pending the bill was paid again (cash): Stripe's refusal
    must not over-apply the bill; the money becomes client credit. Same for a bill cancelled
    meanwhile."""
    practice, client, bill_id, payment = await card_payment(svc, http, publish, 8000)
    reachable = refund_times_out(monkeypatch, svc)
    r = await http.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=staff(practice))
    assert r.json()["status"] == "pending"
    cash = {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 8000}
    assert (await http.post("/v1/payments", json=cash, headers=staff(practice))).status_code == 201
    reachable()
    stripe_refuses_refunds(monkeypatch, svc, "amount_too_large")
    await manual_reconciler(svc)
    assert [r["status"] for r in (await open_on(http, practice, payment["id"]))["refunds"]] == ["failed"]
    assert await bill_applied(svc, bill_id) == 8000, "paid once, not twice"
    credit = (await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))).json()
    assert credit["balance_cents"] == 8000 and credit["entries"][0]["kind"] == "refund_reversed"

    practice, client, bill_id, payment = await card_payment(svc, http, publish, 5000)
    reachable = refund_times_out(monkeypatch, svc)
    r = await http.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=staff(practice))
    assert r.json()["status"] == "pending"
    cancelled = snapshot(bill_id, client, client_owes=5000, status="cancelled", version=2)
    await publish(topics.BILLING, bill_event("BillCancelled", practice, cancelled), key=client, settings=svc.settings)

    async def projected_cancelled() -> bool:
        async with svc.db.transaction() as session:
            status = await session.scalar(text("SELECT status FROM bills WHERE id = :b"), {"b": bill_id})
        return status == "cancelled"

    await eventually(projected_cancelled)
    reachable()
    await manual_reconciler(svc)
    assert await bill_applied(svc, bill_id) == 0, "nothing lands on a cancelled bill"
    credit = (await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))).json()
    assert credit["balance_cents"] == 5000


async def test_an_online_prepayment_is_charged_in_the_practices_currency(svc, http, publish) -> None:
    """Case 3."""
    practice, client = new_id("p"), new_id("c")
    data = {"timezone": "America/Toronto", "currency": "CAD", "autopay_time": "00:30:00"}
    await publish(topics.BILLING, envelope("PracticeAutomationChanged", practice, data), key=practice,
                  settings=svc.settings)  # fmt: skip

    async def known() -> bool:
        async with svc.db.transaction() as session:
            return bool(await session.scalar(select(practices.c.currency).where(practices.c.practice_id == practice)))

    await eventually(known)
    await add_card(svc, http, practice, client)
    body = {"client_id": client, "method": "card", "online": True, "amount_cents": 2500}
    r = await http.post("/v1/payments", json=body, headers=staff(practice))
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    intent = await localstripe(svc, f"/v1/payment_intents/{r.json()['stripe_payment_intent_id']}")
    assert (intent["currency"], intent["amount"]) == ("cad", 2500)


async def test_credit_from_a_settling_online_payment_waits_for_the_client_lock(svc, http, publish, monkeypatch) -> None:
    """Case 4: the webhook that settles an online prepayment writes client credit; it must take
    the client lock, so the balance it reports counts a credit written at the same moment."""
    practice, client = new_id("p"), new_id("c")
    await add_card(svc, http, practice, client)

    async def no_answer(**kwargs: Any) -> Any:
        raise StripeUnavailable("read timed out")

    monkeypatch.setattr(svc.payments.stripe, "charge", no_answer)
    body = {"client_id": client, "method": "card", "online": True, "amount_cents": 3000}
    pending = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    assert pending["status"] == "pending"
    intent = {"id": f"pi_{uuid.uuid4().hex[:12]}", "object": "payment_intent", "status": "succeeded",
              "amount": 3000, "currency": "usd", "latest_charge": f"ch_{uuid.uuid4().hex[:12]}",
              "metadata": {"payment_id": pending["id"], "practice_id": practice}}  # fmt: skip
    payload, headers = signed(svc.settings, "payment_intent.succeeded", intent)
    async with svc.db.transaction() as other:
        await other.execute(
            text("SELECT 1 FROM clients WHERE practice_id = :p AND id = :c FOR UPDATE"), {"p": practice, "c": client}
        )
        await other.execute(
            text(
                "INSERT INTO credit_entries (id, practice_id, client_id, kind, amount_cents)"
                " VALUES (:id, :p, :c, 'discount', 500)"
            ),
            {"id": str(uuid.uuid4()), "p": practice, "c": client},
        )
        webhook = asyncio.create_task(http.post("/v1/stripe/webhook", content=payload, headers=headers))

        async def waiting_on_a_lock_or_done() -> bool:
            if webhook.done():
                return True
            async with svc.db.transaction() as s:
                return bool(
                    await s.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND wait_event_type = 'Lock' AND query LIKE '%clients%'"
                        )
                    )
                )

        await eventually(waiting_on_a_lock_or_done)
        assert not webhook.done(), "the settling payment wrote credit without the client lock"
    assert (await webhook).status_code == 200
    events = await payment_events(
        svc.settings, client, lambda es: any(e["event_type"] == "CreditChanged" and e["data"]["kind"] == "prepayment"
                                             for e in es)
    )  # fmt: skip
    prepaid = [e["data"] for e in events if e["event_type"] == "CreditChanged" and e["data"]["kind"] == "prepayment"]
    assert prepaid[0]["balance_cents"] == 3500


async def test_the_reconciler_retries_a_charge_with_the_same_key_and_parameters(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    """Case 5: a client pays in the portal with their card on file (on session); the call
    reaches Stripe but the answer is lost. The reconciler's retry must be the same request
    under the same idempotency key, or real Stripe answers with an idempotency error."""
    practice, client, bill_id = await with_bill(svc, publish, owes=4200)
    await add_card(svc, http, practice, client)
    intents = svc.payments.stripe.client.v1.payment_intents
    real_create = intents.create_async
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def recording(params: dict[str, Any], options: dict[str, Any]) -> Any:
        calls.append((json.loads(json.dumps(params)), dict(options)))
        intent = await real_create(params, options)
        if len(calls) == 1:
            raise stripe.APIConnectionError("read timed out after the request reached Stripe")
        return intent

    monkeypatch.setattr(intents, "create_async", recording)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 4200}
    r = await http.post("/v1/payments", json=body, headers=as_client(practice, client))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    await manual_reconciler(svc)
    assert (await open_on(http, practice, r.json()["id"]))["status"] == "succeeded"
    assert len(calls) == 2
    assert calls[1] == calls[0], "the retry must repeat the first call exactly"
    assert calls[0][1]["idempotency_key"] == f"payment-{r.json()['id']}"


async def test_a_retried_pay_page_payment_gets_the_first_answer(svc, http, publish) -> None:
    """Case 8a: the first request paid the bill in full; its retry is not 'nothing to pay'."""
    number = int(uuid.uuid4().hex[:7], 16)
    practice, client, bill_id = new_id("p"), new_id("c"), new_id("bill")
    bill = snapshot(bill_id, client, client_owes=2700, number=number, access_code="271828")
    await publish(topics.BILLING, bill_event("BillCreated", practice, bill), key=client, settings=svc.settings)
    body = {"bill_number": number, "access_code": "271828", "practice_id": practice,
            "stripe_payment_method_id": await payment_method(svc.settings)}  # fmt: skip

    async def paid() -> httpx.Response | None:
        r = await http.post("/v1/public/pay", json=body, headers={"Idempotency-Key": "pay-once"})
        return r if r.status_code == 201 else None

    first = await eventually(paid, timeout=5)
    again = await http.post("/v1/public/pay", json=body, headers={"Idempotency-Key": "pay-once"})
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    fresh = await http.post("/v1/public/pay", json=body, headers={"Idempotency-Key": "another"})
    assert fresh.status_code == 409 and fresh.json()["error"]["code"] == "nothing_to_pay"


async def test_a_retried_online_payment_replays_its_settled_state(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    """Case 8b: the first answer was `pending` (Stripe did not answer); once the reconciler
    settled it, a retry with the same key shows it settled."""
    practice, client, bill_id = await with_bill(svc, publish, owes=3300)
    await add_card(svc, http, practice, client)
    gateway = svc.payments.stripe
    real_charge = gateway.charge

    async def no_answer(**kwargs: Any) -> Any:
        raise StripeUnavailable("connection refused")

    monkeypatch.setattr(gateway, "charge", no_answer)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 3300}
    first = await http.post("/v1/payments", json=body, headers=staff(practice, "retry-me"))
    assert first.json()["status"] == "pending"
    monkeypatch.setattr(gateway, "charge", real_charge)
    await manual_reconciler(svc)
    again = await http.post("/v1/payments", json=body, headers=staff(practice, "retry-me"))
    assert again.status_code == 201
    assert (again.json()["id"], again.json()["status"]) == (first.json()["id"], "succeeded")


async def test_idempotency_keys_are_scoped_to_the_caller(svc, http, publish) -> None:
    """Case 8c: two clients of one practice who happen to send the same key each get their own
    answer, never the other's (nor a 'key reused')."""
    practice = new_id("p")
    answers = []
    for client in (new_id("c"), new_id("c")):
        await add_card(svc, http, practice, client)
        body = {"client_id": client, "method": "card", "online": True, "amount_cents": 1100}
        r = await http.post("/v1/payments", json=body, headers={**as_client(practice, client), "Idempotency-Key": "k1"})
        assert r.status_code == 201, r.text
        answers.append(r.json())
    assert answers[0]["id"] != answers[1]["id"]
    assert [a["client_id"] for a in answers] != [answers[0]["client_id"]] * 2


async def test_two_quick_payments_each_carry_the_balance_they_leave(svc, http, publish) -> None:
    """Case 6: receipts quote the balance after each payment; two payments in quick succession
    must not both say the same (billing's snapshot is one behind): payments puts it in the event."""
    practice, client, bill_id = await with_bill(svc, publish, owes=15000)
    body = {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 5000}
    for _ in range(2):
        assert (await http.post("/v1/payments", json=body, headers=staff(practice))).status_code == 201
    events = await payment_events(
        svc.settings, client, lambda es: sum(e["event_type"] == "PaymentRecorded" for e in es) == 2
    )
    left = [e["data"]["allocations"][0]["balance_after_cents"] for e in events if e["event_type"] == "PaymentRecorded"]
    assert left == [10000, 5000]


def intent_event(payment: dict[str, Any], practice: str, **overrides: Any) -> dict[str, Any]:
    return {"id": f"pi_{uuid.uuid4().hex[:12]}", "object": "payment_intent", "status": "succeeded",
            "amount": payment["amount_cents"], "currency": "usd", "latest_charge": f"ch_{uuid.uuid4().hex[:12]}",
            "metadata": {"payment_id": payment["id"], "practice_id": practice}} | overrides  # fmt: skip


async def pending_payment(svc, http, publish, monkeypatch, owes: int = 2000) -> tuple[str, dict[str, Any]]:
    practice, client, bill_id = await with_bill(svc, publish, owes=owes)
    await add_card(svc, http, practice, client)

    async def no_answer(**kwargs: Any) -> Any:
        raise StripeUnavailable("connection refused")

    monkeypatch.setattr(svc.payments.stripe, "charge", no_answer)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": owes}
    payment = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    assert payment["status"] == "pending"
    return practice, payment


@pytest.mark.expect_error_log
async def test_an_intent_whose_amount_or_currency_differs_is_held_not_applied(svc, http, publish, monkeypatch) -> None:
    """Issue 12: the intent's amount and currency are compared with our payment."""
    practice, _, _, payment = await card_payment(svc, http, publish, 7000)
    charge = {"id": payment["stripe_charge_id"], "object": "charge", "amount": 7000, "currency": "eur",
              "payment_intent": payment["stripe_payment_intent_id"], "amount_refunded": 7000}  # fmt: skip
    payload, headers = signed(svc.settings, "charge.refunded", charge)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    assert (await open_on(http, practice, payment["id"]))["refunds"] == []
    for wrong in ({"amount": 1}, {"currency": "eur"}):
        practice, payment = await pending_payment(svc, http, publish, monkeypatch)
        payload, headers = signed(svc.settings, "payment_intent.succeeded", intent_event(payment, practice, **wrong))
        assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
        after = await open_on(http, practice, payment["id"])
        assert after["status"] == "review" and "Stripe charged" in after["failure_reason"]


async def test_an_intent_settles_only_its_own_payment_in_its_own_practice(svc, http, publish, monkeypatch) -> None:
    """Issue 12: lookups scoped by practice; an intent cannot settle a payment bound to another."""
    practice, payment = await pending_payment(svc, http, publish, monkeypatch)
    other_practice = intent_event(payment, practice)
    other_practice["metadata"]["practice_id"] = new_id("p")
    payload, headers = signed(svc.settings, "payment_intent.succeeded", other_practice)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    assert (await open_on(http, practice, payment["id"]))["status"] == "pending"

    async with svc.db.transaction() as session:  # Stripe answered with an intent still in progress
        await session.execute(
            text("UPDATE payments SET stripe_payment_intent_id = :pi WHERE id = :id"),
            {"pi": f"pi_{uuid.uuid4().hex[:12]}", "id": payment["id"]},
        )
    hijack = intent_event(payment, practice)
    payload, headers = signed(svc.settings, "payment_intent.succeeded", hijack)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    assert (await open_on(http, practice, payment["id"]))["status"] == "pending"


async def test_a_webhook_delivered_twice_at_once_is_applied_once(svc, http, publish, monkeypatch) -> None:
    """Issue 12: de-duplication is insert-first, in the transaction of the effect."""
    practice, payment = await pending_payment(svc, http, publish, monkeypatch)
    payload, headers = signed(svc.settings, "payment_intent.succeeded", intent_event(payment, practice))
    answers = await asyncio.gather(
        *(http.post("/v1/stripe/webhook", content=payload, headers=headers) for _ in range(2))
    )
    assert sorted(a.json().get("duplicate", False) for a in answers) == [False, True]
    assert (await open_on(http, practice, payment["id"]))["status"] == "succeeded"
