"""Cards on file and online payments through Stripe (localstripe): charge, decline, refund,
idempotent retries, the reconciler for a call that timed out, webhooks, autopay."""

import hashlib
import hmac
import json
import time
import uuid

import pytest

from services.payments.stripe_gateway import StripeUnavailable
from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import (
    DECLINES,
    VISA,
    as_client,
    bill_event,
    new_id,
    payment_events,
    payment_method,
    snapshot,
    staff,
    stripe_client,
)

pytestmark = pytest.mark.integration

AUTHORIZATION = {"signed_by": "Pat Client", "signed_at": "2026-11-01T10:00:00Z", "method": "portal",
                 "consent_version": "v3"}  # fmt: skip


async def with_bill(svc, publish, owes=15000, **kw):
    practice, client, bill_id = new_id("p"), new_id("c"), new_id("bill")
    event = bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=owes, **kw))
    await publish(topics.BILLING, event, key=client, settings=svc.settings)
    return practice, client, bill_id


async def add_card(svc, http, practice, client, number=VISA, authorization=AUTHORIZATION, **extra):
    body = {"stripe_payment_method_id": await payment_method(svc.settings, number), **extra}
    if authorization:
        body["authorization"] = authorization
    r = await http.post(f"/v1/clients/{client}/cards", json=body, headers=staff(practice))
    assert r.status_code == 201, r.text
    return r.json()


async def test_card_on_file_charged_online_then_refunded_through_stripe(svc, http, publish) -> None:
    practice, client, bill_id = await with_bill(svc, publish)
    card = await add_card(svc, http, practice, client)
    assert (card["brand"], card["last4"], card["exp_year"], card["is_default"]) == ("visa", "4242", 2031, True)
    assert card["authorized"] and card["authorization"]["consent_version"] == "v3"
    assert VISA not in json.dumps(card)
    cards = (await http.get(f"/v1/clients/{client}/cards", headers=staff(practice))).json()["items"]
    assert [c["id"] for c in cards] == [card["id"]]

    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 15000}
    key = new_id("k")
    r = await http.post("/v1/payments", json=body, headers=staff(practice, key))
    assert r.status_code == 201, r.text
    payment = r.json()
    assert payment["status"] == "succeeded" and payment["card_last4"] == "4242"
    intent_id = payment["stripe_payment_intent_id"]
    assert intent_id.startswith("pi_") and payment["stripe_dashboard_url"].endswith(f"/payments/{intent_id}")
    again = await http.post("/v1/payments", json=body, headers=staff(practice, key))
    assert again.json()["id"] == payment["id"] and again.json()["stripe_payment_intent_id"] == intent_id

    events = await payment_events(
        svc.settings, client, lambda es: {"CardAuthorized", "PaymentRecorded"} <= {e["event_type"] for e in es}
    )
    recorded = [e["data"] for e in events if e["event_type"] == "PaymentRecorded"]
    assert len(recorded) == 1
    assert recorded[0]["payment"]["online"] and recorded[0]["payment"]["card_brand"] == "visa"

    r = await http.post(f"/v1/payments/{payment['id']}/refunds", json={"amount_cents": 4000}, headers=staff(practice))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded" and r.json()["stripe_refund_id"].startswith("re_")
    in_stripe = await stripe_client(svc.settings).v1.refunds.retrieve_async(r.json()["stripe_refund_id"])
    assert in_stripe.amount == 4000


async def test_declined_card_is_a_402_with_the_reason_and_applies_nothing(svc, http, publish) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=9000)
    await add_card(svc, http, practice, client, number=DECLINES)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 9000}
    r = await http.post("/v1/payments", json=body, headers=staff(practice))
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "card_declined" and "declined" in r.json()["error"]["message"]
    attempts = (await http.get("/v1/payments", params={"client_id": client}, headers=staff(practice))).json()["items"]
    assert [(p["status"], p["allocations"]) for p in attempts] == [
        ("failed", [{"bill_id": bill_id, "amount_cents": 0}])
    ]
    events = await payment_events(svc.settings, client, lambda es: any(e["event_type"] == "PaymentFailed" for e in es))
    failed = next(e["data"] for e in events if e["event_type"] == "PaymentFailed")
    assert failed["bill_id"] == bill_id and "declined" in failed["reason"]
    assert not any(e["event_type"] == "PaymentRecorded" for e in events)
    cash = await http.post("/v1/payments", json={**body, "method": "cash", "online": False}, headers=staff(practice))
    assert cash.status_code == 201 and cash.json()["allocations"][0]["amount_cents"] == 9000


async def test_stripe_timeout_leaves_pending_and_the_reconciler_settles_it(svc, http, publish, monkeypatch) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=5000)
    await add_card(svc, http, practice, client)
    gateway = svc.payments.stripe
    real_charge = gateway.charge
    charged = []

    async def timeout_once(**kwargs):
        """The call reaches Stripe (localstripe charges the card); the answer is lost."""
        monkeypatch.setattr(gateway, "charge", real_charge)
        charged.append(await real_charge(**kwargs))
        raise StripeUnavailable("read timed out")

    monkeypatch.setattr(gateway, "charge", timeout_once)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 5000}
    r = await http.post("/v1/payments", json=body, headers=staff(practice))
    assert r.status_code == 201 and r.json()["status"] == "pending"
    held = await http.post("/v1/payments", json={**body, "method": "cash", "online": False}, headers=staff(practice))
    assert held.status_code == 409, "a pending charge holds its amount on the bill"

    async def settled():
        p = (await http.get(f"/v1/payments/{r.json()['id']}", headers=staff(practice))).json()
        return p if p["status"] != "pending" else None

    payment = await eventually(settled, timeout=10)
    assert payment["status"] == "succeeded" and payment["stripe_payment_intent_id"]
    assert charged[0].status == "succeeded", "the lost answer was a real charge at Stripe"


def signed(settings, event_type: str, obj: dict) -> tuple[bytes, dict[str, str]]:
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type, "data": {"object": obj}}
    payload = json.dumps(event).encode()
    ts = int(time.time())
    sig = hmac.new(settings.stripe_webhook_secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}


async def test_webhooks_record_dashboard_refunds_and_disputes_once(svc, http, publish) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=10000)
    await add_card(svc, http, practice, client)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 10000}
    payment = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    charge = {
        "id": payment["stripe_charge_id"],
        "object": "charge",
        "payment_intent": payment["stripe_payment_intent_id"],
        "amount": 10000,
        "currency": "usd",
        "amount_refunded": 2500,
    }
    payload, headers = signed(svc.settings, "charge.refunded", charge)
    for _ in range(2):
        r = await http.post("/v1/stripe/webhook", content=payload, headers=headers)
        assert r.status_code == 200, r.text
    bad = await http.post("/v1/stripe/webhook", content=payload, headers={**headers, "Stripe-Signature": "t=1,v1=00"})
    assert bad.status_code == 400
    dispute = {"id": f"dp_{uuid.uuid4().hex[:10]}", "object": "dispute", "amount": 3000, "reason": "fraudulent",
               "charge": charge["id"], "payment_intent": charge["payment_intent"]}  # fmt: skip
    payload, headers = signed(svc.settings, "charge.dispute.created", dispute)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    after = (await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))).json()
    assert sorted((r["source"], r["amount_cents"]) for r in after["refunds"]) == [
        ("dispute", 3000),
        ("stripe_dashboard", 2500),
    ]
    assert after["allocations"] == [{"bill_id": bill_id, "amount_cents": 4500}]
    # A later charge.refunded carries Stripe's running total of refunds (disputes apart): only
    # the new part is recorded.
    payload, headers = signed(svc.settings, "charge.refunded", {**charge, "amount_refunded": 6500})
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    after = (await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))).json()
    assert after["refunded_cents"] == 9500


async def test_autopay_charges_only_authorized_cards(svc, http, publish) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=7000)
    unsigned = await add_card(svc, http, practice, client, authorization=None)
    r = await http.put(f"/v1/clients/{client}/autopay", json={"enabled": True, "card_id": unsigned["id"]},
                       headers=staff(practice))  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "card_not_authorized"
    signed_card = await add_card(svc, http, practice, client)
    r = await http.put(f"/v1/clients/{client}/autopay", json={"enabled": True, "card_id": signed_card["id"]},
                       headers=staff(practice))  # fmt: skip
    assert r.status_code == 200 and r.json()["enabled"]
    await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))

    async def run():
        items = (await http.post("/v1/autopay/run", headers=staff(practice))).json()["items"]
        return items or None

    items = await eventually(run, timeout=5)
    assert [(i["bill_id"], i["outcome"], i["amount_cents"]) for i in items] == [(bill_id, "succeeded", 7000)]
    assert (await http.post("/v1/autopay/run", headers=staff(practice))).json()["items"] == []
    charged = (await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))).json()["items"]
    assert charged[0]["card_id"] == signed_card["id"]


async def test_a_minors_billing_contact_card_is_used_first_and_clients_pay_their_own(svc, http, publish) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=4000)
    await add_card(svc, http, practice, client, make_default=True)
    guardian = await add_card(svc, http, practice, client, holder="billing_contact")
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 4000}
    other = await http.post("/v1/payments", json=body, headers=as_client(practice, new_id("c")))
    assert other.status_code == 404
    cash = await http.post("/v1/payments", json={**body, "method": "cash", "online": False},
                           headers=as_client(practice, client))  # fmt: skip
    assert cash.status_code == 403
    r = await http.post("/v1/payments", json=body, headers=as_client(practice, client))
    assert r.status_code == 201, r.text
    assert r.json()["card_id"] == guardian["id"]


async def test_payment_intent_webhooks_settle_pending_payments(svc, http, publish, monkeypatch) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=6000)
    await add_card(svc, http, practice, client)

    async def no_answer(**kwargs):
        raise StripeUnavailable("read timed out")

    monkeypatch.setattr(svc.payments.stripe, "charge", no_answer)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 2000}
    first = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    second = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    assert first["status"] == second["status"] == "pending"

    def intent(payment_id: str, status: str, error: dict | None = None) -> dict:
        return {"id": f"pi_{uuid.uuid4().hex[:12]}", "object": "payment_intent", "status": status,
                "amount": 2000, "currency": "usd",
                "latest_charge": f"ch_{uuid.uuid4().hex[:12]}", "last_payment_error": error,
                "metadata": {"payment_id": payment_id}}  # fmt: skip

    ok = intent(first["id"], "succeeded")
    payload, headers = signed(svc.settings, "payment_intent.succeeded", ok)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    declined = intent(second["id"], "requires_payment_method", {"message": "Your card has insufficient funds."})
    payload, headers = signed(svc.settings, "payment_intent.payment_failed", declined)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200

    settled = (await http.get(f"/v1/payments/{first['id']}", headers=staff(practice))).json()
    assert settled["status"] == "succeeded" and settled["stripe_payment_intent_id"] == ok["id"]
    failed = (await http.get(f"/v1/payments/{second['id']}", headers=staff(practice))).json()
    assert failed["status"] == "failed" and failed["failure_reason"] == "Your card has insufficient funds."
    assert failed["allocations"] == [{"bill_id": bill_id, "amount_cents": 0}]


async def test_a_refund_stripe_did_not_answer_is_retried_by_the_reconciler(svc, http, publish, monkeypatch) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=3000)
    await add_card(svc, http, practice, client)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 3000}
    payment = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    gateway = svc.payments.stripe
    real_refund = gateway.refund
    made = []

    async def timeout_once(**kwargs):
        """The refund reaches Stripe; the answer is lost."""
        monkeypatch.setattr(gateway, "refund", real_refund)
        made.append(await real_refund(**kwargs))
        raise StripeUnavailable("read timed out")

    monkeypatch.setattr(gateway, "refund", timeout_once)
    r = await http.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=staff(practice))
    assert r.status_code == 201 and r.json()["status"] == "pending"
    again = await http.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=staff(practice))
    assert again.status_code == 409, "the pending refund already counts against the payment"

    async def refunded():
        p = (await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))).json()
        return p["refunds"][0] if p["refunds"][0]["status"] == "succeeded" else None

    done = await eventually(refunded, timeout=10)
    assert done["stripe_refund_id"].startswith("re_") and done["amount_cents"] == 3000
    assert made and made[0].startswith("re_"), "the lost answer was a real refund at Stripe"


async def test_removing_the_default_card_promotes_another_and_stops_autopay_on_it(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    older = await add_card(svc, http, practice, client)
    newer = await add_card(svc, http, practice, client, make_default=True)
    r = await http.put(f"/v1/clients/{client}/autopay", json={"enabled": True, "card_id": newer["id"]},
                       headers=staff(practice))  # fmt: skip
    assert r.status_code == 200
    assert (await http.delete(f"/v1/clients/{client}/cards/{newer['id']}", headers=staff(practice))).status_code == 204
    autopay = (await http.get(f"/v1/clients/{client}/autopay", headers=staff(practice))).json()
    assert (autopay["enabled"], autopay["card_id"]) == (False, None), "autopay stopped with the card it used"
    cards = (await http.get(f"/v1/clients/{client}/cards", headers=staff(practice))).json()["items"]
    assert [(c["id"], c["is_default"]) for c in cards] == [(older["id"], True)]
    assert (await http.delete(f"/v1/clients/{client}/cards/{newer['id']}", headers=staff(practice))).status_code == 404
    body = {"client_id": client, "method": "card", "online": True, "card_id": newer["id"], "amount_cents": 100}
    assert (await http.post("/v1/payments", json=body, headers=staff(practice))).status_code == 404
    events = await payment_events(svc.settings, client, lambda es: any(e["event_type"] == "CardRemoved" for e in es))
    assert [e["data"] for e in events if e["event_type"] == "CardRemoved"] == [
        {"client_id": client, "card_id": newer["id"]}
    ]
