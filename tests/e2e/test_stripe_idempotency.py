"""The Stripe idempotency promise, proven against a recording proxy in front of localstripe
(which itself ignores idempotency keys): when Stripe acts but its answer never arrives (the call
times out), every retry reuses the same Idempotency-Key with the same parameters, so Stripe
replays the first answer instead of charging or refunding again. Real Stripe refuses a key
reused with other parameters; the proxy does too, so such a payment would stay pending."""

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from aiokafka import AIOKafkaProducer

from bench.faults.stripe_proxy import StripeProxy
from shared import admin, topics
from shared.auth import issue_token
from shared.settings import Settings
from tests.conftest import eventually, isolated_topics
from tests.e2e.test_slice import upstream_events
from tests.processes import SmtpInbox, Stack, free_port, running_services

pytestmark = pytest.mark.e2e
PRACTICE = "practice-rivers-edge"


@pytest.fixture(scope="module")
async def proxy(test_settings: Settings) -> AsyncIterator[StripeProxy]:
    assert test_settings.stripe_api_base
    p = StripeProxy(test_settings.stripe_api_base.rstrip("/"), free_port(), lose_delay=3.0)
    await p.start()
    yield p
    await p.close()


@pytest.fixture(scope="module")
async def stripe_stack(
    test_settings: Settings, smtp_inbox: tuple[SmtpInbox, int], proxy: StripeProxy
) -> AsyncIterator[Stack]:
    """Billing and payments with Stripe behind the proxy, a 1 s Stripe timeout and a 1 s reconciler."""
    inbox, port = smtp_inbox
    own = await isolated_topics(test_settings.model_copy(update={"pg_database": f"{test_settings.pg_database}_stripe"}))
    await admin.ensure_database(own)
    env = {
        "STRIPE_API_BASE": f"http://127.0.0.1:{proxy.port}",
        "STRIPE_TIMEOUT_SECONDS": "1",
        "PAYMENTS_RECONCILE_INTERVAL_S": "1",
    }
    try:
        async with running_services(own, inbox, port, services=("billing", "payments"), extra_env=env) as running:
            yield running
    finally:
        await admin.drop_database(own, own.pg_database)


async def client_with_bill_and_card(
    stack: Stack, producer: AIOKafkaProducer, http: httpx.AsyncClient, staff: dict
) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    ev = upstream_events(suffix)
    client_id = f"client-{suffix}"
    for name in ("clinician", "client", "session"):
        event = ev[name]
        headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        await producer.send_and_wait(
            stack.settings.topic(topics.SCHEDULING), json.dumps(event).encode(), key=client_id.encode(), headers=headers
        )

    async def bill() -> dict | None:
        r = await http.post(
            f"{stack.url('billing')}/v1/bills",
            headers=staff,
            json={"client_id": client_id, "session_ids": [f"sess-{suffix}"], "responsibility": "client"},
        )
        return r.json() if r.status_code == 201 else None

    created = await eventually(bill)
    direct = stripe.StripeClient(
        "sk_test_local", base_addresses={"api": Settings().stripe_api_base or ""}, http_client=stripe.HTTPXClient()
    )
    pm = await direct.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    r = await http.post(
        f"{stack.url('payments')}/v1/clients/{client_id}/cards",
        headers=staff,
        json={
            "stripe_payment_method_id": pm.id,
            "make_default": True,
            "authorization": {
                "signed_by": "Jamie Ellis",
                "signed_at": dt.datetime.now(dt.UTC).isoformat(),
                "method": "portal",
            },
        },
    )
    assert r.status_code == 201, r.text
    return {"client_id": client_id, "bill": created, "card_id": r.json()["id"]}


def assert_one_execution_same_params(proxy: StripeProxy, key: str) -> None:
    """Stripe executed the call once (the first to arrive); every retry carried the same key and
    parameters and got the first answer replayed (or 409 while the first was still running)."""
    calls = sorted((r for r in proxy.records if r.key == key), key=lambda r: r.at)
    assert len(calls) >= 2, f"{key}: no retry reached Stripe ({calls})"
    assert {c.params for c in calls} == {calls[0].params}, f"{key} retried with other parameters: {calls}"
    assert not calls[0].replayed and calls[0].status < 400
    assert all(c.replayed or c.status == 409 for c in calls[1:]), calls


async def settled(stack: Stack, http: httpx.AsyncClient, staff: dict, payment_id: str) -> dict | None:
    body = (await http.get(f"{stack.url('payments')}/v1/payments/{payment_id}", headers=staff)).json()
    return body if body["status"] == "succeeded" else None


@pytest.mark.parametrize("who", ["staff", "client"])
async def test_a_charge_whose_answer_is_lost_is_retried_with_the_same_key_and_parameters(
    stripe_stack: Stack,
    proxy: StripeProxy,
    kafka_producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    staff_headers: dict,
    who: str,
) -> None:
    """Staff charging a card on file, and a client paying with their own card on file."""
    setup = await client_with_bill_and_card(stripe_stack, kafka_producer, http, staff_headers)
    payer = (
        staff_headers
        if who == "staff"
        else {"Authorization": f"Bearer {issue_token(PRACTICE, 'client', client_id=setup['client_id'])}"}
    )
    proxy.lose_answers = 1
    r = await http.post(
        f"{stripe_stack.url('payments')}/v1/payments",
        headers=payer,
        json={
            "client_id": setup["client_id"],
            "bill_id": setup["bill"]["id"],
            "payer": "client",
            "method": "card",
            "online": True,
            "card_id": setup["card_id"],
            "amount_cents": 6000,
        },
    )
    assert r.status_code == 201, r.text
    payment = r.json()
    assert payment["status"] == "pending", "the Stripe call timed out: the outcome is unknown"

    done = await eventually(lambda: settled(stripe_stack, http, staff_headers, payment["id"]), timeout=40)
    assert_one_execution_same_params(proxy, f"payment-{payment['id']}")
    assert done["stripe_payment_intent_id"]


async def test_a_refund_whose_answer_is_lost_is_retried_with_the_same_key_and_parameters(
    stripe_stack: Stack,
    proxy: StripeProxy,
    kafka_producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    staff_headers: dict,
) -> None:
    setup = await client_with_bill_and_card(stripe_stack, kafka_producer, http, staff_headers)
    r = await http.post(
        f"{stripe_stack.url('payments')}/v1/payments",
        headers=staff_headers,
        json={
            "client_id": setup["client_id"],
            "bill_id": setup["bill"]["id"],
            "payer": "client",
            "method": "card",
            "online": True,
            "card_id": setup["card_id"],
            "amount_cents": 6000,
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    payment_id = r.json()["id"]

    proxy.lose_answers = 1
    r = await http.post(
        f"{stripe_stack.url('payments')}/v1/payments/{payment_id}/refunds",
        headers=staff_headers,
        json={"amount_cents": 2500, "reason": "session shortened"},
    )
    assert r.status_code == 201, r.text
    refund_id = r.json()["id"]

    async def refund_settled() -> bool:
        body = (
            await http.get(f"{stripe_stack.url('payments')}/v1/payments/{payment_id}", headers=staff_headers)
        ).json()
        return [x["status"] for x in body["refunds"] if x["id"] == refund_id] == ["succeeded"]

    await eventually(refund_settled, timeout=40)
    assert_one_execution_same_params(proxy, f"refund-{refund_id}")
