"""The pay page is an actor of its own in the audit trail: a payment made there stages an
AuditRecorded (role and actor `pay_page`, the requester's address) with the payment; so are
Stripe's webhooks (`stripe`) and the reconciler (`reconciler`)."""

import json

import pytest

from shared import topics
from tests.conftest import eventually, read_topic
from tests.integration.payments import test_money_edges
from tests.integration.payments.conftest import payment_method, staff
from tests.integration.payments.test_money_edges import pending_payment
from tests.integration.payments.test_public_pay import published_bill
from tests.integration.payments.test_stripe import add_card, signed, with_bill

pytestmark = pytest.mark.integration
manual_reconciler = test_money_edges.manual_reconciler  # the fixture, shared


async def test_a_pay_page_payment_is_audited_as_the_pay_page(svc, http, publish) -> None:
    practice, client, _, number = await published_bill(svc, publish, "271828")
    body = {"bill_number": number, "access_code": "271828", "amount_cents": 2000,
            "stripe_payment_method_id": await payment_method(svc.settings)}  # fmt: skip
    r = await http.post("/v1/public/pay", json=body)
    assert r.status_code == 201, r.text

    def audits(records: list) -> list[dict]:
        events = [json.loads(x.value) for x in records if x.key == client.encode()]
        return [e for e in events if e["event_type"] == "AuditRecorded" and e["practice_id"] == practice]

    [audit] = audits(await read_topic(svc.settings, topics.PAYMENTS, until=lambda rs: bool(audits(rs))))
    assert audit["data"] == {
        "actor": "pay_page", "role": "pay_page", "service": "payments", "action": "pay_page_payment",
        "resource": {"kind": "payment", "id": r.json()["id"]}, "client_id": client, "ip": "127.0.0.1",
    }  # fmt: skip


async def test_the_reconciler_and_stripe_webhooks_are_actors_too(svc, http, publish, monkeypatch, manual_reconciler):
    """What a Stripe webhook and the reconciler change is recorded as theirs, in the transaction
    that changes it: a dashboard refund once however often Stripe delivers it, a payment the
    reconciler settles after Stripe did not answer."""
    practice, client, bill_id = await with_bill(svc, publish, owes=10000)
    await add_card(svc, http, practice, client)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": 10000}
    paid = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    charge = {"id": paid["stripe_charge_id"], "object": "charge", "payment_intent": paid["stripe_payment_intent_id"],
              "amount": 10000, "currency": "usd", "amount_refunded": 2500}  # fmt: skip
    payload, headers = signed(svc.settings, "charge.refunded", charge)
    for _ in range(2):  # Stripe delivers it twice
        assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    [refund] = (await http.get(f"/v1/payments/{paid['id']}", headers=staff(practice))).json()["refunds"]

    real_charge = svc.payments.stripe.charge
    late_practice, pending = await pending_payment(svc, http, publish, monkeypatch)
    monkeypatch.setattr(svc.payments.stripe, "charge", real_charge)  # Stripe answers again
    await manual_reconciler(svc)
    assert (await http.get(f"/v1/payments/{pending['id']}", headers=staff(late_practice))).json()["status"] == (
        "succeeded"
    )

    def audits(records: list) -> list[dict]:
        events = [json.loads(x.value) for x in records if x.key in (client.encode(), pending["client_id"].encode())]
        return [e["data"] for e in events if e["event_type"] == "AuditRecorded" and e["data"]["role"] != "staff"]

    def both(records: list) -> bool:
        return {"reconciler", "stripe"} <= {a["actor"] for a in audits(records)}

    got = audits(await read_topic(svc.settings, topics.PAYMENTS, until=both))
    assert sorted(got, key=lambda a: a["actor"]) == [
        {"actor": "reconciler", "role": "automation", "service": "payments", "action": "settle_payment",
         "resource": {"kind": "payment", "id": pending["id"]}, "client_id": pending["client_id"], "ip": None},
        {"actor": "stripe", "role": "webhook", "service": "payments", "action": "record_stripe_dashboard_refund",
         "resource": {"kind": "refund", "id": refund["id"]}, "client_id": client, "ip": None},
    ]  # fmt: skip


async def test_an_autopay_charge_is_automations_doing(svc, http, publish) -> None:
    practice, client, bill_id = await with_bill(svc, publish, owes=7000)
    card = await add_card(svc, http, practice, client)
    r = await http.put(f"/v1/clients/{client}/autopay", json={"enabled": True, "card_id": card["id"]},
                       headers=staff(practice))  # fmt: skip
    assert r.status_code == 200, r.text

    async def run() -> list | None:
        return (await http.post("/v1/autopay/run", headers=staff(practice))).json()["items"] or None

    [item] = await eventually(run, timeout=10)
    [charged] = (await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))).json()["items"]

    def audits(records: list) -> list[dict]:
        events = [json.loads(x.value) for x in records if x.key == client.encode()]
        return [e["data"] for e in events if e["event_type"] == "AuditRecorded" and e["data"]["actor"] == "automation"]

    [audit] = audits(await read_topic(svc.settings, topics.PAYMENTS, until=lambda rs: bool(audits(rs))))
    assert item["outcome"] == "succeeded"
    assert audit == {"actor": "automation", "role": "automation", "service": "payments", "action": "autopay_charge",
                     "resource": {"kind": "payment", "id": charged["id"]}, "client_id": client, "ip": None}  # fmt: skip
