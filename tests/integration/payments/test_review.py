"""The operator's tool for payments held for review (`python -m services.payments.review`): it
lists them, fails one (its hold on the bill released, PaymentFailed published), or asks Stripe
again and settles it by the webhook's rules."""

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from services.payments import review
from services.payments.db import bill_applications
from tests.integration.payments.conftest import payment_events
from tests.integration.payments.test_money_edges import intent_event, open_on, pending_payment
from tests.integration.payments.test_stripe import signed

pytestmark = pytest.mark.integration


async def held_for_review(svc, http, publish, monkeypatch) -> tuple[str, dict[str, Any]]:
    """A pending card payment whose intent Stripe reports with another amount."""
    practice, payment = await pending_payment(svc, http, publish, monkeypatch)
    event = intent_event(payment, practice, amount=payment["amount_cents"] + 1)
    payload, headers = signed(svc.settings, "payment_intent.succeeded", event)
    assert (await http.post("/v1/stripe/webhook", content=payload, headers=headers)).status_code == 200
    assert (await open_on(http, practice, payment["id"]))["status"] == "review"
    return practice, payment


async def held_on_bills(svc, payment_id: str) -> int:
    async with svc.db.transaction() as session:
        query = select(func.coalesce(func.sum(bill_applications.c.amount_cents), 0))
        return int(await session.scalar(query.where(bill_applications.c.payment_id == payment_id)))


@pytest.mark.expect_error_log  # holding a payment for review logs an ERROR, by design
async def test_an_operator_lists_held_payments_and_fails_one_releasing_its_bill(
    svc, http, publish, monkeypatch, capsys
) -> None:
    practice, payment = await held_for_review(svc, http, publish, monkeypatch)
    listed = await review.held(svc.payments, practice)
    assert [(p["id"], p["amount_cents"]) for p in listed] == [(payment["id"], payment["amount_cents"])]
    assert "Stripe charged" in listed[0]["reason"]
    assert await held_on_bills(svc, payment["id"]) == payment["amount_cents"]
    assert await review.run(review.parse(["list", "--practice", practice]), svc.settings) == 0  # the CLI
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [payment["id"]]

    await review.fail(svc.payments, payment["id"], "refunded in the Stripe dashboard")

    after = await open_on(http, practice, payment["id"])
    assert after["status"] == "failed" and "refunded in the Stripe dashboard" in after["failure_reason"]
    assert await held_on_bills(svc, payment["id"]) == 0
    assert await review.held(svc.payments, practice) == []
    events = await payment_events(
        svc.settings, payment["client_id"], lambda es: any(e["event_type"] == "PaymentFailed" for e in es)
    )
    assert [e["data"]["payment"]["id"] for e in events if e["event_type"] == "PaymentFailed"] == [payment["id"]]
    with pytest.raises(review.NotHeld):
        await review.fail(svc.payments, payment["id"], "twice")


@pytest.mark.expect_error_log
async def test_a_recheck_settles_by_what_stripe_says_now(svc, http, publish, monkeypatch) -> None:
    """The webhook's intent is one Stripe (localstripe) does not know: asked again, Stripe says
    nothing was charged, so the payment fails and releases its bill."""
    practice, payment = await held_for_review(svc, http, publish, monkeypatch)
    assert await review.recheck(svc.payments, payment["id"]) == "failed"
    after = await open_on(http, practice, payment["id"])
    assert "Stripe has no payment intent" in after["failure_reason"]
    assert await held_on_bills(svc, payment["id"]) == 0
    with pytest.raises(review.NotHeld):
        await review.recheck(svc.payments, f"pay-{uuid.uuid4().hex}")
