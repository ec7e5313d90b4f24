"""Nightly autopay against real Kafka, Postgres and localstripe: the night in the practice's
timezone, each bill charged once however many runs or replicas, the billing contact's card
first for a minor, insurance-pending bills left alone, three failed nights turn it off, and a
run that crashed is finished by the next one."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.payments import autopay
from services.payments.app import build
from services.payments.db import bills, practices
from shared import topics
from tests.conftest import eventually, isolated_topics
from tests.integration.payments.conftest import (
    DECLINES,
    bill_event,
    envelope,
    new_id,
    payment_events,
    snapshot,
    staff,
)
from tests.integration.payments.test_stripe import add_card

pytestmark = pytest.mark.integration


async def setup_practice(svc, publish, *, autopay_time: str = "00:30", skip_insurance_pending: bool = False) -> str:
    practice = new_id("p")
    data = {"timezone": "America/New_York", "currency": "USD", "autopay_time": autopay_time,
            "autopay_skip_insurance_pending": skip_insurance_pending}  # fmt: skip
    await publish(topics.BILLING, envelope("PracticeAutomationChanged", practice, data), key=practice,
                  settings=svc.settings)  # fmt: skip

    async def known() -> bool:
        async with svc.db.transaction() as session:
            return await session.scalar(select(practices.c.practice_id).where(practices.c.practice_id == practice))

    await eventually(known, timeout=10)
    return practice


async def open_bill(svc, publish, practice: str, client: str, owes: int, number: int = 1, **kw: Any) -> str:
    bill_id = new_id("bill")
    event = bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=owes, number=number, **kw))
    await publish(topics.BILLING, event, key=client, settings=svc.settings)
    await svc.payments.wait_for_bills([bill_id])
    return bill_id


async def autopay_client(svc, http, practice: str, client: str, number: str | None = None, **card_kw: Any) -> dict:
    card = await add_card(svc, http, practice, client, **({"number": number} if number else {}), **card_kw)
    r = await http.put(f"/v1/clients/{client}/autopay", json={"enabled": True, "card_id": card["id"]},
                       headers=staff(practice))  # fmt: skip
    assert r.status_code == 200, r.text
    return card


async def run(http, practice: str, as_of: str) -> dict[str, Any]:
    r = await http.post("/v1/autopay/run", json={"as_of": as_of}, headers=staff(practice))
    assert r.status_code == 200, r.text
    return r.json()


async def payments_of(http, practice: str, bill_id: str) -> list[dict[str, Any]]:
    r = await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))
    return r.json()["items"]


async def test_the_night_is_the_practices_and_a_bill_is_charged_once(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, 7000)
    card = await autopay_client(svc, http, practice, client)

    # 2026-03-09 04:20Z is 00:20 EDT (after the spring-forward): before 00:30, still the night of the 8th
    first = await run(http, practice, "2026-03-09T04:20:00Z")
    assert first["night"] == "2026-03-08"
    assert [(i["bill_id"], i["outcome"], i["amount_cents"], i["card_id"]) for i in first["items"]] == [
        (bill_id, "succeeded", 7000, card["id"])
    ]
    again = await run(http, practice, "2026-03-09T04:31:00Z")  # 00:31 EDT: the night of the 9th
    assert again["night"] == "2026-03-09" and again["items"] == []
    assert [p["amount_cents"] for p in await payments_of(http, practice, bill_id)] == [7000]
    state = (await http.get(f"/v1/clients/{client}/autopay", headers=staff(practice))).json()
    assert state["enabled"] and state["failed_nights"] == 0 and state["last_night"] == "2026-03-08"
    assert [(a["bill_id"], a["outcome"]) for a in state["attempts"]] == [(bill_id, "succeeded")]


async def test_concurrent_runs_and_two_replicas_charge_each_bill_once(svc, http, publish, test_settings) -> None:
    practice = await setup_practice(svc, publish)
    clients = [new_id("c") for _ in range(3)]
    bills = [await open_bill(svc, publish, practice, c, 1000 * (n + 1), number=n + 1) for n, c in enumerate(clients)]
    for c in clients:
        await autopay_client(svc, http, practice, c)
    replica_settings = (await isolated_topics(svc.settings)).model_copy(update={"autopay_interval_s": 0})
    replica, replica_app = build(replica_settings)
    await replica.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=replica_app), base_url="http://r") as other:
            as_of = "2026-11-05T06:00:00Z"
            results = await asyncio.gather(
                run(http, practice, as_of), run(other, practice, as_of), run(http, practice, as_of),
                run(other, practice, "2026-11-06T06:00:00Z"),
            )  # fmt: skip
    finally:
        await replica.stop()
    charged = [i["bill_id"] for r in results for i in r["items"] if i["outcome"] == "succeeded"]
    assert sorted(charged) == sorted(bills)
    for n, bill_id in enumerate(bills):
        assert [p["amount_cents"] for p in await payments_of(http, practice, bill_id)] == [1000 * (n + 1)]


async def test_a_minors_billing_contact_card_is_tried_first_then_the_autopay_card(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    minor = new_id("c")
    client_event = envelope("ClientUpserted", practice, {"client": _minor(minor)})
    await publish(topics.SCHEDULING, client_event, key=minor, settings=svc.settings)
    bill_id = await open_bill(svc, publish, practice, minor, 4500)
    own = await autopay_client(svc, http, practice, minor)
    contact = await add_card(svc, http, practice, minor, number=DECLINES, holder="billing_contact")

    async def is_minor() -> bool:
        order = await autopay._card_order(svc.payments, practice, minor)
        return order == [contact["id"], own["id"]]

    await eventually(is_minor, timeout=10)
    result = await run(http, practice, "2026-11-05T06:00:00Z")
    assert [(i["bill_id"], i["outcome"], i["card_id"]) for i in result["items"]] == [(bill_id, "succeeded", own["id"])]
    state = (await http.get(f"/v1/clients/{minor}/autopay", headers=staff(practice))).json()
    assert [(a["card_id"], a["outcome"]) for a in reversed(state["attempts"])] == [
        (contact["id"], "failed"), (own["id"], "succeeded")
    ]  # fmt: skip
    assert state["failed_nights"] == 0  # the night was paid


async def test_bills_with_insurance_pending_are_left_alone_when_the_practice_says_so(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish, skip_insurance_pending=True)
    client = new_id("c")
    pending = await open_bill(svc, publish, practice, client, 2000, number=1, insurance_owes=8000)
    settled = await open_bill(svc, publish, practice, client, 3000, number=2)
    await autopay_client(svc, http, practice, client)
    result = await run(http, practice, "2026-11-05T06:00:00Z")
    assert [(i["bill_id"], i["outcome"]) for i in result["items"]] == [(settled, "succeeded")]
    assert await payments_of(http, practice, pending) == []


async def test_three_failed_nights_in_a_row_turn_autopay_off(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, 5000)
    card = await autopay_client(svc, http, practice, client, number=DECLINES)
    for night in ("2026-11-02", "2026-11-03", "2026-11-03", "2026-11-04"):  # the 3rd is a rerun: counted once
        result = await run(http, practice, f"{night}T12:00:00Z")
        assert [i["outcome"] for i in result["items"]] == ["failed"]
    state = (await http.get(f"/v1/clients/{client}/autopay", headers=staff(practice))).json()
    assert state["enabled"] is False and state["card_id"] is None and state["failed_nights"] == 3
    assert [a["outcome"] for a in state["attempts"]] == ["failed"] * 3
    assert (await run(http, practice, "2026-11-05T12:00:00Z"))["items"] == []

    def done(events: list[dict[str, Any]]) -> bool:
        return any(e["event_type"] == "AutopayDisabled" for e in events)

    events = await payment_events(svc.settings, client, done)
    failed = [e["data"] for e in events if e["event_type"] == "PaymentFailed"]
    assert len(failed) == 3 and all(f["autopay"] and f["bill_id"] == bill_id for f in failed)
    [disabled] = [e["data"] for e in events if e["event_type"] == "AutopayDisabled"]
    assert disabled["card_id"] == card["id"] and disabled["failed_nights"] == 3
    assert [p["status"] for p in await payments_of(http, practice, bill_id)] == ["failed"] * 3


async def test_a_run_that_crashed_is_finished_by_the_rerun_without_charging_twice(
    svc, http, publish, monkeypatch
) -> None:
    practice = await setup_practice(svc, publish)
    clients = [new_id("c") for _ in range(3)]
    bills = [await open_bill(svc, publish, practice, c, 1500, number=n + 1) for n, c in enumerate(clients)]
    for c in clients:
        await autopay_client(svc, http, practice, c)
    real, calls = autopay.record_payment, []

    async def crash_on_second(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        answer = await real(*args, **kw)
        if len(calls) == 2:
            raise RuntimeError("replica killed after the charge, before it was noted")
        return answer

    monkeypatch.setattr(autopay, "record_payment", crash_on_second)
    with pytest.raises(RuntimeError):
        await run(http, practice, "2026-11-05T06:00:00Z")
    monkeypatch.setattr(autopay, "record_payment", real)
    rerun = await run(http, practice, "2026-11-05T06:00:00Z")
    ordered = sorted(zip(clients, bills, strict=True))
    assert [i["bill_id"] for i in rerun["items"]] == [ordered[2][1]]  # the first two were charged already
    for bill_id in bills:
        assert [(p["status"], p["amount_cents"]) for p in await payments_of(http, practice, bill_id)] == [
            ("succeeded", 1500)
        ]


def _minor(client_id: str) -> dict[str, Any]:
    return {
        "id": client_id, "first_name": "Noah", "last_name": "Park", "email": None, "date_of_birth": "2014-05-02",
        "address": {"line1": "1 Main St", "city": "Portland", "state": "OR", "postal_code": "97201"},
        "is_minor": True,
        "guardians": [{"name": "Grace Park", "email": "grace@example.com", "relationship": "mother",
                       "is_billing_contact": True}],
    }  # fmt: skip


async def test_a_balance_paid_meanwhile_is_not_overcharged(svc, http, publish, monkeypatch) -> None:
    """Between the run reading a bill's open balance and charging it, the client paid part of it:
    the charge is refused (nothing becomes surprise credit) and the bill waits for the next night."""
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, 6000)
    await autopay_client(svc, http, practice, client)
    real = autopay.due_bills

    async def stale(*args: Any, **kw: Any) -> list[dict[str, Any]]:
        return [b | {"open_cents": b["open_cents"] + 1000} for b in await real(*args, **kw)]

    monkeypatch.setattr(autopay, "due_bills", stale)
    result = await run(http, practice, "2026-11-05T06:00:00Z")
    assert [(i["outcome"], i["reason"]) for i in result["items"]] == [("skipped", "balance_changed")]
    assert await payments_of(http, practice, bill_id) == []
    monkeypatch.setattr(autopay, "due_bills", real)
    result = await run(http, practice, "2026-11-05T07:00:00Z")  # a rerun the same night charges the real balance
    assert [(i["outcome"], i["amount_cents"]) for i in result["items"]] == [("succeeded", 6000)]


async def test_autopay_charges_what_is_left_after_a_partial_payment_billing_has_seen(svc, http, publish) -> None:
    """Billing's later snapshot shows the remaining balance; payments keeps the client's share and
    subtracts its own applications once, so the night charges exactly what is still open."""
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, 10000)
    cash = {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 4000}
    assert (await http.post("/v1/payments", json=cash, headers=staff(practice))).status_code == 201
    seen = snapshot(bill_id, client, client_owes=10000, version=2) | {
        "client_owes_cents": 6000, "paid_cents": 4000, "balance_cents": 6000
    }  # fmt: skip
    await publish(topics.BILLING, bill_event("BillUpdated", practice, seen), key=client, settings=svc.settings)

    async def updated() -> bool:
        async with svc.db.transaction() as session:
            return await session.scalar(select(bills.c.version).where(bills.c.id == bill_id)) == 2

    await eventually(updated, timeout=10)
    await autopay_client(svc, http, practice, client)
    result = await run(http, practice, "2026-11-05T06:00:00Z")
    assert [(i["outcome"], i["amount_cents"]) for i in result["items"]] == [("succeeded", 6000)]
