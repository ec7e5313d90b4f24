"""A service killed mid-flow (SIGKILL, no graceful shutdown) loses nothing and doubles nothing:
what happened while it was down is done once when it comes back."""

import uuid

import pytest

from shared import topics
from tests.conftest import eventually, read_topic
from tests.e2e.test_slice import bill_emails, upstream_events

pytestmark = pytest.mark.e2e


async def billed_session(stack, publish, http, headers) -> tuple[dict, str]:
    suffix = uuid.uuid4().hex[:8]
    ev = upstream_events(suffix)
    client_id = f"client-{suffix}"
    for name in ("clinician", "client", "session"):
        await publish(topics.SCHEDULING, ev[name], key=client_id)

    async def bill() -> dict | None:
        r = await http.post(
            f"{stack.url('billing')}/v1/bills",
            json={"client_id": client_id, "session_ids": [f"sess-{suffix}"], "responsibility": "client"},
            headers={**headers, "Idempotency-Key": f"bill-{suffix}"},
        )
        return r.json() if r.status_code == 201 else None

    return await eventually(bill), f"jamie.{suffix}@example.com"


async def test_notifications_killed_before_a_share_sends_the_email_once_after_restart(
    stack, publish, http, staff_headers
) -> None:
    bill, address = await billed_session(stack, publish, http, staff_headers)
    stack.kill("notifications")
    try:
        r = await http.post(f"{stack.url('billing')}/v1/bills/{bill['id']}/share", json={}, headers=staff_headers)
        assert r.status_code in (200, 202), r.text
    finally:
        stack.start("notifications")
    await stack.ready("notifications")
    await eventually(lambda: bill_emails(stack, address), timeout=40)
    r = await http.get(
        f"{stack.url('notifications')}/v1/emails", params={"client_id": bill["client_id"]}, headers=staff_headers
    )
    assert [e["status"] for e in r.json()["items"] if e["kind"] == "bill_shared"] == ["sent"]
    assert len(bill_emails(stack, address)) == 1


async def test_billing_killed_while_a_payment_arrives_shows_the_bill_paid_after_restart(
    stack, publish, http, staff_headers
) -> None:
    bill, _ = await billed_session(stack, publish, http, staff_headers)

    # Billing has published the bill (its outbox relay ran) before it dies.
    await read_topic(stack.settings, topics.BILLING, until=lambda rs: any(bill["id"].encode() in r.value for r in rs))
    stack.kill("billing")
    try:
        r = await http.post(
            f"{stack.url('payments')}/v1/payments",
            json={
                "client_id": bill["client_id"],
                "bill_id": bill["id"],
                "payer": "client",
                "method": "check",
                "reference": "check 2231",
                "amount_cents": bill["balance_cents"],
            },
            headers={**staff_headers, "Idempotency-Key": f"pay-{bill['id']}"},
        )
        assert r.status_code == 201, r.text
    finally:
        stack.start("billing")
    await stack.ready("billing")

    async def paid() -> dict | None:
        body = (await http.get(f"{stack.url('billing')}/v1/bills/{bill['id']}", headers=staff_headers)).json()
        return body if body["status"] == "paid" else None

    final = await eventually(paid, timeout=40)
    assert final["paid_cents"] == bill["total_cents"] and final["balance_cents"] == 0
    assert len(final["payments"]) == 1, "the payment applied once"
