"""Refunds of offline payments: full or partial, never more than the payment (even when
requests race), credit part first, a credit payment back to credit, one allocation alone."""

import asyncio

import pytest

from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import bill_event, new_id, payment_events, snapshot, staff

pytestmark = pytest.mark.integration


async def setup_payment(svc, http, publish, *, owes=10000, paid=12000, method="cash"):
    practice, client, bill_id = new_id("p"), new_id("c"), new_id("bill")
    event = bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=owes))
    await publish(topics.BILLING, event, key=client, settings=svc.settings)
    body = {"client_id": client, "bill_id": bill_id, "method": method, "amount_cents": paid}
    r = await http.post("/v1/payments", json=body, headers=staff(practice))
    assert r.status_code == 201, r.text
    return practice, client, bill_id, r.json()


async def refund(http, practice, payment_id, body=None, key=None):
    return await http.post(f"/v1/payments/{payment_id}/refunds", json=body or {}, headers=staff(practice, key))


async def test_partial_refund_takes_the_credit_part_first_then_reopens_the_bill(svc, http, publish) -> None:
    practice, client, bill_id, payment = await setup_payment(svc, http, publish)
    r = await refund(http, practice, payment["id"], {"amount_cents": 5000, "reason": "session cancelled"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["amount_cents"] == 5000 and body["credit_cents"] == 2000 and body["status"] == "succeeded"
    assert body["allocations"] == [{"bill_id": bill_id, "amount_cents": 3000}]
    credit = (await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))).json()
    assert credit["balance_cents"] == 0 and credit["entries"][0]["kind"] == "refund"
    after = (await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))).json()
    assert after["refunded_cents"] == 5000 and after["refundable_cents"] == 7000
    assert after["allocations"] == [{"bill_id": bill_id, "amount_cents": 7000}]

    events = await payment_events(
        svc.settings, client, lambda es: any(e["event_type"] == "PaymentRefunded" for e in es)
    )
    refunded = next(e["data"] for e in events if e["event_type"] == "PaymentRefunded")
    assert refunded["refund"]["amount_cents"] == 5000 and refunded["credit_cents"] == 2000
    assert refunded["allocations"] == [{"bill_id": bill_id, "amount_cents": 3000, "balance_after_cents": 3000}]
    assert refunded["payment"]["id"] == payment["id"]

    rest = await refund(http, practice, payment["id"])
    assert rest.status_code == 201 and rest.json()["amount_cents"] == 7000
    again = await refund(http, practice, payment["id"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_refunded"
    over = await refund(http, practice, payment["id"], {"amount_cents": 1})
    assert over.status_code == 422 and over.json()["error"]["code"] == "refund_exceeds_payment"


async def test_racing_refunds_never_exceed_the_payment(svc, http, publish) -> None:
    practice, _, _, payment = await setup_payment(svc, http, publish, owes=10000, paid=10000)
    results = await asyncio.gather(*(refund(http, practice, payment["id"], {"amount_cents": 3000}) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [201, 201, 201, 422, 422]
    after = (await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))).json()
    assert after["refunded_cents"] == 9000 and len(after["refunds"]) == 3


async def test_refund_of_a_credit_payment_goes_back_to_credit(svc, http, publish) -> None:
    practice, client, bill_id = new_id("p"), new_id("c"), new_id("bill")
    adj = await http.post(f"/v1/clients/{client}/credit-adjustments",
                          json={"amount_cents": 4000, "kind": "reimbursement", "reason": "insurance paid us back"},
                          headers=staff(practice, "adj-1"))  # fmt: skip
    assert adj.status_code == 201 and adj.json()["balance_cents"] == 4000
    event = bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=10000))
    await publish(topics.BILLING, event, key=client, settings=svc.settings)

    # BillCreated applies the credit automatically; a further credit payment has nothing to use.
    async def applied() -> list:
        return (await http.get("/v1/payments", params={"bill_id": bill_id}, headers=staff(practice))).json()["items"]

    credit_payment = (await eventually(applied))[0]
    assert credit_payment["method"] == "credit" and credit_payment["amount_cents"] == 4000
    none_left = await http.post("/v1/payments", json={"client_id": client, "bill_id": bill_id, "method": "credit",
                                                      "amount_cents": 100}, headers=staff(practice))  # fmt: skip
    assert none_left.status_code == 422 and none_left.json()["error"]["code"] == "insufficient_credit"
    r = await refund(http, practice, credit_payment["id"], {"amount_cents": 1500})
    assert r.status_code == 201
    credit = (await http.get(f"/v1/clients/{client}/credit", headers=staff(practice))).json()
    assert credit["balance_cents"] == 1500
    assert [e["kind"] for e in credit["entries"]] == ["refund_to_credit", "used", "reimbursement"]


async def test_one_allocation_of_a_split_payment_refunded_alone(svc, http, publish) -> None:
    practice, client = new_id("p"), new_id("c")
    bills = [new_id("bill"), new_id("bill")]
    for n, bill_id in enumerate(bills, 1):
        event = bill_event("BillCreated", practice, snapshot(bill_id, client, client_owes=5000, number=n))
        await publish(topics.BILLING, event, key=client, settings=svc.settings)
    body = {"client_id": client, "method": "check", "reference": "77", "amount_cents": 10000,
            "allocations": [{"bill_id": b, "amount_cents": 5000} for b in bills]}  # fmt: skip
    payment = (await http.post("/v1/payments", json=body, headers=staff(practice))).json()
    r = await refund(http, practice, payment["id"], {"bill_id": bills[0], "amount_cents": 5000}, key="r-1")
    assert r.status_code == 201 and r.json()["allocations"] == [{"bill_id": bills[0], "amount_cents": 5000}]
    replay = await refund(http, practice, payment["id"], {"bill_id": bills[0], "amount_cents": 5000}, key="r-1")
    assert replay.json()["id"] == r.json()["id"]
    after = (await http.get(f"/v1/payments/{payment['id']}", headers=staff(practice))).json()
    assert {a["bill_id"]: a["amount_cents"] for a in after["allocations"]} == {bills[0]: 0, bills[1]: 5000}
    too_much = await refund(http, practice, payment["id"], {"bill_id": bills[1], "amount_cents": 6000})
    assert too_much.status_code == 422
