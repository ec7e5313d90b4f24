"""Recording payments against bills that billing announced on Kafka: full, partial, over,
split, idempotent, concurrent, late bills, cancelled bills (AllocationRejected)."""

import asyncio

import pytest
from sqlalchemy import func, select

from services.payments.db import clients
from shared import topics
from tests.conftest import committed_offset, eventually
from tests.integration.payments.conftest import (
    as_client,
    bill_event,
    envelope,
    new_id,
    payment_events,
    snapshot,
    staff,
)

pytestmark = pytest.mark.integration


async def open_bill(svc, publish, practice, client, owes=10000, **kw) -> str:
    bill_id = new_id("bill")
    await publish(
        topics.BILLING,
        bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=owes, **kw)),
        key=client,
        settings=svc.settings,
    )
    return bill_id


async def pay(http, practice, body, key=None):
    return await http.post("/v1/payments", json=body, headers=staff(practice, key))


async def test_cash_payment_in_full_is_recorded_and_announced(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, owes=16000)
    r = await pay(
        http,
        practice,
        {
            "client_id": client,
            "bill_id": bill_id,
            "payer": "client",
            "method": "cash",
            "amount_cents": 16000,
            "notes": "at the desk",
        },
    )
    assert r.status_code == 201, r.text
    payment = r.json()
    assert payment["status"] == "succeeded"
    assert payment["allocations"] == [{"bill_id": bill_id, "amount_cents": 16000}]
    assert payment["credit_cents"] == 0 and payment["stripe_dashboard_url"] is None

    events = await payment_events(
        svc.settings, client, lambda es: any(e["event_type"] == "PaymentRecorded" for e in es)
    )
    recorded = [e for e in events if e["event_type"] == "PaymentRecorded"]
    assert len(recorded) == 1
    data = recorded[0]["data"]
    assert data["payment"]["id"] == payment["id"] and data["payment"]["method"] == "cash"
    assert data["allocations"] == [{"bill_id": bill_id, "amount_cents": 16000, "balance_after_cents": 0}]
    assert data["credit_cents"] == 0
    assert recorded[0]["practice_id"] == practice

    got = await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))
    assert got.status_code == 200 and got.json()["amount_cents"] == 16000
    by_bill = await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))
    assert [p["id"] for p in by_bill.json()["items"]] == [payment["id"]]
    assert (await http.get(f"/v1/payments/{payment['id']}", headers=staff("other-practice"))).status_code == 404
    assert (await http.get(f"/v1/payments/{payment['id']}", headers=as_client(practice, "someone"))).status_code == 404
    assert (await http.get(f"/v1/payments/{payment['id']}", headers=as_client(practice, client))).status_code == 200


async def test_partial_then_overpayment_turns_the_rest_into_credit(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, owes=10000)
    first = await pay(
        http,
        practice,
        {"client_id": client, "bill_id": bill_id, "method": "check", "reference": "1042", "amount_cents": 6000},
    )
    assert first.status_code == 201 and first.json()["allocations"][0]["amount_cents"] == 6000
    second = await pay(
        http, practice, {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 5000}
    )
    assert second.status_code == 201, second.text
    assert second.json()["allocations"] == [{"bill_id": bill_id, "amount_cents": 4000}]
    assert second.json()["credit_cents"] == 1000
    credit = await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))
    assert credit.status_code == 200 and credit.json()["balance_cents"] == 1000
    assert credit.json()["entries"][0]["kind"] == "overpayment"
    third = await pay(http, practice, {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 100})
    assert third.status_code == 409 and third.json()["error"]["code"] == "bill_fully_paid"

    events = await payment_events(
        svc.settings, client, lambda es: sum(e["event_type"] in ("PaymentRecorded", "CreditChanged") for e in es) >= 3
    )
    changed = [e["data"] for e in events if e["event_type"] == "CreditChanged"]
    assert changed == [
        {
            "client_id": client,
            "entry_id": changed[0]["entry_id"],
            "kind": "overpayment",
            "amount_cents": 1000,
            "balance_cents": 1000,
            "reason": None,
        }
    ]


async def test_idempotency_key_returns_the_first_answer_and_records_once(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, owes=5000)
    body = {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 2000}
    key = new_id("key")
    first, again = [await pay(http, practice, body, key) for _ in range(2)]
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = await http.get("/v1/payments", params={"client_id": client}, headers=staff(practice))
    assert len(listed.json()["items"]) == 1
    other = await pay(http, practice, {**body, "amount_cents": 1000}, key)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


async def test_concurrent_payments_cannot_over_apply_a_bill(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, owes=9000)
    body = {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 9000}
    await pay(http, practice, {**body, "amount_cents": 1})  # wait for the bill to arrive
    results = await asyncio.gather(*(pay(http, practice, {**body, "amount_cents": 8999}) for _ in range(6)))
    assert sorted(r.status_code for r in results) == [201] + [409] * 5
    listed = await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))
    assert sum(a["amount_cents"] for p in listed.json()["items"] for a in p["allocations"]) == 9000


async def test_one_check_split_across_a_households_bills(svc, http, publish) -> None:
    practice, household = new_id("p"), new_id("h")
    partner_a, partner_b, stranger = new_id("c"), new_id("c"), new_id("c")
    for client in (partner_a, partner_b):
        upsert = envelope(
            "ClientUpserted",
            practice,
            {
                "client": {
                    "id": client,
                    "first_name": "A",
                    "last_name": "B",
                    "date_of_birth": "1990-01-01",
                    "address": {"line1": "1 Main", "city": "X", "state": "CA", "postal_code": "90000"},
                    "household_id": household,
                }
            },
        )
        await publish(topics.SCHEDULING, upsert, key=client, settings=svc.settings)
    bill_a = await open_bill(svc, publish, practice, partner_a, owes=12000)
    bill_b = await open_bill(svc, publish, practice, partner_b, owes=8000)
    bill_x = await open_bill(svc, publish, practice, stranger, owes=8000)

    async def household_known() -> bool:
        async with svc.db.transaction() as session:
            known = await session.scalar(
                select(func.count()).where(clients.c.household_id == household, clients.c.practice_id == practice)
            )
        return known == 2

    await eventually(household_known, timeout=10)
    stranger_too = await pay(http, practice, {"client_id": partner_a, "method": "check", "amount_cents": 20000,
                                              "allocations": [{"bill_id": bill_b, "amount_cents": 1},
                                                              {"bill_id": bill_x, "amount_cents": 1}]})  # fmt: skip
    assert stranger_too.status_code == 422 and stranger_too.json()["error"]["code"] == "not_same_household"
    r = await pay(
        http,
        practice,
        {
            "client_id": partner_a,
            "method": "check",
            "reference": "2001",
            "amount_cents": 20000,
            "allocations": [{"bill_id": bill_a, "amount_cents": 12000}, {"bill_id": bill_b, "amount_cents": 8000}],
        },
    )
    assert r.status_code == 201, r.text
    assert {a["bill_id"]: a["amount_cents"] for a in r.json()["allocations"]} == {bill_a: 12000, bill_b: 8000}
    too_much = await pay(
        http,
        practice,
        {
            "client_id": partner_a,
            "method": "cash",
            "amount_cents": 100,
            "allocations": [{"bill_id": bill_a, "amount_cents": 200}],
        },
    )
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "allocations_exceed_amount"


async def test_payment_waits_briefly_for_a_bill_billing_just_created(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = new_id("bill")
    body = {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 3000}

    async def announce_later() -> None:
        await asyncio.sleep(0.4)
        await publish(
            topics.BILLING,
            bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=3000)),
            key=client,
            settings=svc.settings,
        )

    r, _ = await asyncio.gather(pay(http, practice, body), announce_later())
    assert r.status_code == 201, r.text
    unknown = await pay(http, practice, {**body, "bill_id": new_id("bill")})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    elsewhere = await pay(http, new_id("p"), body)
    assert elsewhere.status_code == 404


async def test_validation_errors_are_422(svc, http) -> None:
    practice = new_id("p")
    for body in (
        {"client_id": "c", "method": "cash", "amount_cents": 10.5},
        {"client_id": "c", "method": "cash", "amount_cents": "100"},
        {"client_id": "c", "method": "cash", "amount_cents": 0},
        {"client_id": "c", "method": "bitcoin", "amount_cents": 100},
        {"client_id": "c", "method": "cash", "amount_cents": 100, "online": True},
        {"client_id": "c", "method": "credit", "amount_cents": 100},
    ):
        r = await pay(http, practice, body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "validation_error"


async def test_allocation_rejected_by_a_cancelled_bill_becomes_credit(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, owes=7000)
    r = await pay(http, practice, {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 7000})
    payment_id = r.json()["id"]
    rejected = envelope(
        "AllocationRejected",
        practice,
        {
            "payment_id": payment_id,
            "bill_id": bill_id,
            "client_id": client,
            "amount_cents": 7000,
            "reason": "bill cancelled",
        },
    )
    for _ in range(2):  # redelivered: applied once
        last = await publish(topics.BILLING, rejected, key=client, settings=svc.settings)

    async def consumed() -> bool:  # offsets are committed after the DB commit: a marker
        return await committed_offset(svc.settings, "payments", topics.BILLING, last.partition) > last.offset

    await eventually(consumed)
    r = await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))
    assert r.json()["balance_cents"] == 7000
    payment = (await http.get(f"/v1/payments/{payment_id}", headers=staff(practice))).json()
    assert payment["allocations"] == [{"bill_id": bill_id, "amount_cents": 0}]
    assert payment["credit_cents"] == 7000


async def test_a_new_bill_takes_available_credit_automatically(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    prepaid = await pay(http, practice, {"client_id": client, "method": "cash", "amount_cents": 5000})
    assert prepaid.status_code == 201 and prepaid.json()["credit_cents"] == 5000
    bill_id = await open_bill(svc, publish, practice, client, owes=8000)

    async def credit_payment():
        r = await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))
        return r.json()["items"]

    items = await eventually(credit_payment)
    assert items[0]["method"] == "credit" and items[0]["amount_cents"] == 5000
    credit = (await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))).json()
    assert credit["balance_cents"] == 0
    assert [e["kind"] for e in credit["entries"]] == ["used", "prepayment"]


async def test_prepayment_for_an_appointment_waits_for_that_appointments_bill(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    appointment = new_id("sess")
    r = await pay(
        http,
        practice,
        {
            "client_id": client,
            "method": "card",
            "amount_cents": 5000,
            "appointment_id": appointment,
            "card_brand": "visa",
            "card_last4": "1881",
        },
    )
    assert r.status_code == 201 and r.json()["credit_cents"] == 5000 and r.json()["card_last4"] == "1881"
    other = await open_bill(svc, publish, practice, client, owes=8000, session_ids=(new_id("sess"),))
    for_it = await open_bill(svc, publish, practice, client, owes=6000, number=2, session_ids=(appointment,))

    async def paid_by_credit():
        r = await http.get("/v1/payments", params={"bill_id": for_it}, headers=staff(practice))
        return r.json()["items"]

    items = await eventually(paid_by_credit)
    assert items[0]["method"] == "credit" and items[0]["amount_cents"] == 5000
    on_other = await http.get("/v1/payments", params={"bill_id": other}, headers=staff(practice))
    assert on_other.json()["items"] == []


async def test_insurance_payment_applies_to_what_insurance_owes(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bill_id = await open_bill(svc, publish, practice, client, owes=2000, insurance_owes=9000)
    body = {"client_id": client, "bill_id": bill_id, "payer": "insurance", "payer_name": "Aetna", "method": "check",
            "reference": "EFT-99812", "amount_cents": 9500, "paid_at": "2026-11-20T12:00:00-05:00"}  # fmt: skip
    r = await pay(http, practice, body)
    assert r.status_code == 201, r.text
    payment = r.json()
    assert payment["allocations"] == [{"bill_id": bill_id, "amount_cents": 9000}] and payment["credit_cents"] == 500
    assert payment["payer_name"] == "Aetna" and payment["paid_at"].startswith("2026-11-20T17:00:00")
    client_part = await pay(
        http, practice, {"client_id": client, "bill_id": bill_id, "method": "cash", "amount_cents": 2000}
    )
    assert client_part.json()["allocations"] == [{"bill_id": bill_id, "amount_cents": 2000}]
    edited = await http.patch(
        f"/v1/payments/{payment['id']}",
        json={"paid_at": "2026-11-21T09:00:00Z", "notes": "late"},
        headers=staff(practice),
    )
    assert edited.status_code == 200 and edited.json()["paid_at"].startswith("2026-11-21T09:00:00")


async def test_lists_are_newest_first_and_paginate(svc, http) -> None:
    practice, client = new_id("p"), new_id("c")
    ids = [(await pay(http, practice, {"client_id": client, "method": "cash", "amount_cents": n})).json()["id"]
           for n in (100, 200, 300)]  # fmt: skip
    first = (await http.get("/v1/payments", params={"client_id": client, "limit": 2}, headers=staff(practice))).json()
    assert [p["id"] for p in first["items"]] == ids[:0:-1] and first["next_cursor"]
    rest = await http.get("/v1/payments", params={"client_id": client, "limit": 2, "cursor": first["next_cursor"]},
                          headers=staff(practice))  # fmt: skip
    assert [p["id"] for p in rest.json()["items"]] == ids[:1] and rest.json()["next_cursor"] is None
    credit = (await http.get(f"/v1/clients/{client}/credit", params={"limit": 2}, headers=staff(practice))).json()
    assert credit["balance_cents"] == 600 and [e["amount_cents"] for e in credit["entries"]] == [300, 200]
    more = await http.get(
        f"/v1/clients/{client}/credit", params={"cursor": credit["next_cursor"]}, headers=staff(practice)
    )
    assert [e["amount_cents"] for e in more.json()["entries"]] == [100]
    bad = await http.get("/v1/payments", params={"cursor": "not-a-cursor"}, headers=staff(practice))
    assert bad.status_code == 422
