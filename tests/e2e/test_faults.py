"""A service killed in the middle of its work (SIGKILL, no graceful shutdown) loses nothing and
doubles nothing: once the system is quiet again (its consumers have caught up, nothing queued),
every count is exact. The fault workload (bench/faults) does the same at scale."""

import uuid
from collections import Counter
from typing import Any

import pytest

from bench.faults.checks import caught_up
from shared import topics
from tests.conftest import eventually, example_event
from tests.e2e.test_slice import upstream_events

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


async def unbilled(stack, http, headers, client_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"client_id": client_id, "limit": 200}
    while True:
        page = (await http.get(f"{stack.url('billing')}/v1/unbilled-sessions", params=params, headers=headers)).json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        params["cursor"] = page["next_cursor"]


async def test_notifications_killed_during_smtp_sends_sends_each_email_once(
    stack, publish, http, staff_headers
) -> None:
    bills = [await billed_session(stack, publish, http, staff_headers) for _ in range(4)]
    stack.inbox.receiving.clear()
    stack.inbox.pause_s = 1.0  # a slow mail server: the kill lands while a message is in flight
    try:
        for bill, _ in bills:
            r = await http.post(f"{stack.url('billing')}/v1/bills/{bill['id']}/share", json={}, headers=staff_headers)
            assert r.status_code in (200, 202), r.text
        await eventually(stack.inbox.receiving.is_set, timeout=60)
        stack.kill("notifications")
    finally:
        stack.inbox.pause_s = 0.0
        stack.start("notifications")
    await stack.ready("notifications")

    async def quiet() -> list[dict[str, Any]] | None:
        emails = []
        for bill, _ in bills:
            r = await http.get(
                f"{stack.url('notifications')}/v1/emails",
                params={"client_id": bill["client_id"]},
                headers=staff_headers,
            )
            emails += [e for e in r.json()["items"] if e["kind"] == "bill_shared"]
        done = len(emails) >= len(bills) and all(e["status"] in ("sent", "failed") for e in emails)
        return emails if done and await caught_up(stack.settings, "notifications", topics.BILLING) else None

    emails = await eventually(quiet, timeout=90)
    assert sorted(e["status"] for e in emails) == ["sent"] * len(bills)
    for _, address in bills:
        ids = {m["Message-ID"] for m in stack.inbox.to(address) if m["Subject"].startswith("Your bill #")}
        # A crash between the server's 250 and the commit resends with the same Message-ID
        # (receivers drop it); a second distinct email would be a real duplicate.
        assert len(ids) == 1, f"{address}: {ids}"


async def test_billing_killed_mid_batch_applies_every_session_and_payment_once(
    stack, publish, http, staff_headers
) -> None:
    bills = [await billed_session(stack, publish, http, staff_headers) for _ in range(2)]
    client_id = f"client-burst-{uuid.uuid4().hex[:8]}"
    client = example_event("ClientUpserted-adult")
    client["data"]["client"].update(id=client_id)
    await publish(topics.SCHEDULING, client, key=client_id)
    sessions = []
    for n in range(300):
        ev = example_event("SessionCompleted-self-pay")
        ev["data"]["session"].update(id=f"sess-{client_id}-{n}", client_id=client_id)
        sessions.append(ev)
    for ev in sessions + sessions[::7]:  # every seventh delivered twice
        await publish(topics.SCHEDULING, ev, key=client_id)

    async def some_applied() -> bool:
        return len(await unbilled(stack, http, staff_headers, client_id)) > 0

    await eventually(some_applied, timeout=60)
    stack.kill("billing")  # while it is still working through the burst
    try:
        for bill, _ in bills:  # payments arrive while billing is down
            r = await http.post(
                f"{stack.url('payments')}/v1/payments",
                json={"client_id": bill["client_id"], "bill_id": bill["id"], "payer": "client", "method": "check",
                      "reference": "check 2231", "amount_cents": bill["balance_cents"]},
                headers={**staff_headers, "Idempotency-Key": f"pay-{bill['id']}"},
            )  # fmt: skip
            assert r.status_code == 201, r.text
    finally:
        stack.start("billing")
    await stack.ready("billing")

    async def quiet() -> bool:
        return await caught_up(stack.settings, "billing", topics.SCHEDULING) and await caught_up(
            stack.settings, "billing", topics.PAYMENTS
        )

    await eventually(quiet, timeout=90)
    ids = Counter(i["session_id"] for i in await unbilled(stack, http, staff_headers, client_id))
    assert len(ids) == 300 and set(ids.values()) == {1}
    for bill, _ in bills:
        final = (await http.get(f"{stack.url('billing')}/v1/bills/{bill['id']}", headers=staff_headers)).json()
        assert final["status"] == "paid" and final["paid_cents"] == bill["total_cents"] and final["balance_cents"] == 0
        assert len(final["payments"]) == 1, "the payment applied once"
