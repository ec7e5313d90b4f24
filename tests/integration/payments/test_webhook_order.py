"""Found by the fault workload, against the real Postgres, Kafka and localstripe: a refund or
dispute Stripe reports before our payment has settled is applied once it has (not dropped),
and an intent Stripe does not know fails its payment once (not retried forever)."""

import logging
import uuid
from typing import Any

import pytest
import stripe
from sqlalchemy import text

from tests.integration.payments import test_money_edges
from tests.integration.payments.conftest import payment_events, staff
from tests.integration.payments.test_money_edges import (
    bill_applied,
    localstripe,
    open_on,
    pending_payment,
)
from tests.integration.payments.test_stripe import add_card, signed, with_bill

pytestmark = pytest.mark.integration
manual_reconciler = test_money_edges.manual_reconciler  # the fixture, shared


async def processing_payment(svc, http, publish, monkeypatch, owes: int) -> tuple[str, str, str, dict[str, Any]]:
    """A card payment whose intent Stripe first answered as `processing` (ours: pending, the
    intent bound) and which then succeeded at Stripe, its webhook not delivered yet."""
    practice, client, bill_id = await with_bill(svc, publish, owes=owes)
    await add_card(svc, http, practice, client)
    intents = svc.payments.stripe.client.v1.payment_intents
    real_create = intents.create_async

    async def still_processing(params: dict[str, Any], options: dict[str, Any]) -> Any:
        intent = await real_create(params, options)
        intent["status"] = "processing"
        return intent

    monkeypatch.setattr(intents, "create_async", still_processing)
    body = {"client_id": client, "bill_id": bill_id, "method": "card", "online": True, "amount_cents": owes}
    r = await http.post("/v1/payments", json=body, headers=staff(practice))
    monkeypatch.setattr(intents, "create_async", real_create)
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    return practice, client, bill_id, r.json()


async def test_a_refund_and_a_dispute_before_settlement_are_applied_after_it_once(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    """The reconciler stands still: the webhook is what settles the payment here."""
    practice, client, bill_id, payment = await processing_payment(svc, http, publish, monkeypatch, 4000)
    intent_id = payment["stripe_payment_intent_id"]
    await svc.payments.stripe.client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 1500})
    intent = await localstripe(svc, f"/v1/payment_intents/{intent_id}")
    charge = intent["latest_charge"]  # localstripe expands it
    if isinstance(charge, str):
        charge = await localstripe(svc, f"/v1/charges/{charge}")
    assert (charge["amount_refunded"], intent["status"]) == (1500, "succeeded")
    dispute = {"id": f"dp_{uuid.uuid4().hex[:12]}", "object": "dispute", "amount": 1000, "charge": charge["id"],
               "payment_intent": intent_id, "reason": "fraudulent"}  # fmt: skip
    early = [signed(svc.settings, "charge.refunded", charge), signed(svc.settings, "charge.dispute.created", dispute)]
    for payload, headers in early:
        r = await http.post("/v1/stripe/webhook", content=payload, headers=headers)
        assert r.status_code == 409 and r.json()["error"]["code"] == "payment_not_settled", r.text
    assert (await open_on(http, practice, payment["id"]))["refunds"] == []

    payload, headers = signed(svc.settings, "payment_intent.succeeded", intent)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    for payload, headers in early + early:  # Stripe's redeliveries, then one more of each
        assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    after = await open_on(http, practice, payment["id"])
    assert after["status"] == "succeeded" and after["refunded_cents"] == 2500
    assert sorted(r["amount_cents"] for r in after["refunds"]) == [1000, 1500]
    assert await bill_applied(svc, bill_id) == 1500
    events = await payment_events(
        svc.settings, client, lambda es: sum(e["event_type"] == "PaymentRefunded" for e in es) >= 2
    )
    kinds = [e["event_type"] for e in events if e["event_type"] in ("PaymentRecorded", "PaymentRefunded")]
    assert sorted(kinds) == ["PaymentRecorded", "PaymentRefunded", "PaymentRefunded"]


async def test_a_refund_of_a_charge_whose_intent_was_never_bound_waits_too(
    svc, http, publish, monkeypatch, manual_reconciler
) -> None:
    """Stripe's answer to our charge was lost: the charge is found by the metadata Stripe
    copies from the intent (our payment id), not dropped as someone else's."""
    practice, payment = await pending_payment(svc, http, publish, monkeypatch, owes=2000)
    charge = {"id": f"ch_{uuid.uuid4().hex[:12]}", "object": "charge", "amount": 2000, "currency": "usd",
              "payment_intent": f"pi_{uuid.uuid4().hex[:12]}", "amount_refunded": 2000,
              "metadata": {"payment_id": payment["id"], "practice_id": practice}}  # fmt: skip
    payload, headers = signed(svc.settings, "charge.refunded", charge)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 409
    intent = {"id": charge["payment_intent"], "object": "payment_intent", "status": "succeeded", "amount": 2000,
              "currency": "usd", "latest_charge": charge["id"], "metadata": charge["metadata"]}  # fmt: skip
    settled = signed(svc.settings, "payment_intent.succeeded", intent)
    assert (await http.post("/v1/stripe/webhook", content=settled[0], headers=settled[1])).status_code == 200
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    after = await open_on(http, practice, payment["id"])
    assert (after["status"], after["refunded_cents"]) == ("succeeded", 2000)


async def test_a_pending_payment_whose_intent_stripe_does_not_know_fails_once(
    svc, http, publish, monkeypatch, manual_reconciler, caplog
) -> None:
    """Nor an ERROR logged on each pass."""
    practice, payment = await pending_payment(svc, http, publish, monkeypatch, owes=2600)
    missing = f"pi_{uuid.uuid4().hex[:12]}"
    async with svc.db.transaction() as session:  # Stripe answered `processing`, then lost the intent
        await session.execute(
            text("UPDATE payments SET stripe_payment_intent_id = :pi, created_at = created_at - interval '1 hour'"
                 " WHERE id = :id"),
            {"pi": missing, "id": payment["id"]},
        )  # fmt: skip
    with pytest.raises(stripe.InvalidRequestError):
        await svc.payments.stripe.client.v1.payment_intents.retrieve_async(missing)
    for _ in range(2):
        await manual_reconciler(svc)
    after = await open_on(http, practice, payment["id"])
    assert after["status"] == "failed" and missing in after["failure_reason"]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    bill_id = payment["allocations"][0]["bill_id"]
    assert await bill_applied(svc, bill_id) == 0, "its hold on the bill is released"
    events = await payment_events(svc.settings, payment["client_id"], lambda es: any(
        e["event_type"] == "PaymentFailed" for e in es))  # fmt: skip
    assert [e["event_type"] for e in events if e["event_type"].startswith("Payment")] == ["PaymentFailed"]
