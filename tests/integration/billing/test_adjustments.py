"""Adjustments (write-offs, discounts, bad debt) through the real Kafka and Postgres: what they
do to a bill's figures and status, reversal, cancel, statements, the drift check, and a
payment that reaches cents already written off."""

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import update

from services.billing.db import bills
from tests.conftest import eventually
from tests.integration.billing.conftest import Practice

pytestmark = pytest.mark.integration


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def a_bill(practice: Practice, **body: Any) -> dict[str, Any]:
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid, date_of_service="2026-11-02")
    return await practice.billed(cid, [sid], **body)  # 16000


async def adjust(practice: Practice, bill_id: str, amount: int, kind: str = "write_off", **kw: Any):
    return await practice.post(f"/v1/bills/{bill_id}/adjustments", {"amount_cents": amount, "kind": kind,
                                                                     "reason": "hardship", **kw})  # fmt: skip


async def test_an_adjustment_lowers_the_balance_closes_the_bill_and_can_be_reversed(practice: Practice) -> None:
    bill = await a_bill(practice)
    r = await adjust(practice, bill["id"], 16001)
    assert r.status_code == 422 and r.json()["error"]["code"] == "adjustment_exceeds_balance"
    for bad in ({"amount_cents": 0}, {"kind": "gift"}, {"reason": ""}):
        r = await practice.post(f"/v1/bills/{bill['id']}/adjustments",
                                {"amount_cents": 100, "kind": "discount", "reason": "x"} | bad)  # fmt: skip
        assert r.status_code == 422, bad

    r = await adjust(practice, bill["id"], 6000, "discount")
    assert r.status_code == 201, r.text
    discount = r.json()
    assert discount["bill_id"] == bill["id"] and discount["amount_cents"] == 6000 and discount["kind"] == "discount"
    assert discount["reason"] == "hardship" and discount["reversed_at"] is None and discount["created_at"]
    after = await practice.bill(bill["id"])
    assert (after["adjusted_cents"], after["paid_cents"], after["balance_cents"]) == (6000, 0, 10000)
    assert after["client_owes_cents"] == 10000 and after["status"] == "open"
    assert [a["id"] for a in after["adjustments"]] == [discount["id"]], "the bill's history shows it"

    await practice.payment(bill["client_id"], [(bill["id"], 10000)])
    closed = await eventually(lambda: _status(practice, bill["id"], "closed"))
    assert (closed["paid_cents"], closed["balance_cents"]) == (10000, 0), "0 with an adjustment in it: closed"

    r = await practice.post(f"/v1/bills/{bill['id']}/adjustments/{discount['id']}/reverse", {"reason": "oops"})
    assert r.status_code == 200, r.text
    assert r.json()["reversed_at"] is not None
    reopened = await practice.bill(bill["id"])
    assert (reopened["status"], reopened["adjusted_cents"], reopened["balance_cents"]) == ("open", 0, 6000)
    r = await practice.post(f"/v1/bills/{bill['id']}/adjustments/{discount['id']}/reverse", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "adjustment_reversed"
    r = await practice.post(f"/v1/bills/{bill['id']}/adjustments/{uuid.uuid4()}/reverse", {})
    assert r.status_code == 404

    events = await practice.events(lambda es: any(e["event_type"] == "BillAdjustmentReversed" for e in es))
    mine = [
        e for e in events if e["data"].get("bill_id") == bill["id"] or e["data"].get("bill", {}).get("id") == bill["id"]
    ]
    kinds = [e["event_type"] for e in mine]
    assert kinds.count("BillAdjusted") == 1 and kinds.count("BillAdjustmentReversed") == 1
    [adjusted] = [e for e in mine if e["event_type"] == "BillAdjusted"]
    assert adjusted["data"]["adjustment"]["amount_cents"] == 6000
    statuses = [e["data"]["bill"]["status"] for e in mine if "bill" in e["data"]]
    assert "closed" in statuses and statuses[-1] == "open"
    assert "BillPaid" not in kinds, "closed by an adjustment is not paid"


async def test_a_payment_never_lands_on_written_off_cents(practice: Practice) -> None:
    bill = await a_bill(practice)
    assert (await adjust(practice, bill["id"], 12000, "bad_debt")).status_code == 201
    payment_id, _ = await practice.payment(bill["client_id"], [(bill["id"], 9000)])  # sent before it knew
    events = await practice.events(lambda es: any(e["event_type"] == "AllocationRejected"
                                                  and e["data"]["payment_id"] == payment_id for e in es))  # fmt: skip
    [rejected] = [e for e in events if e["event_type"] == "AllocationRejected"]
    assert (rejected["data"]["amount_cents"], rejected["data"]["reason"]) == (5000, "bill_adjusted")
    after = await eventually(lambda: _status(practice, bill["id"], "closed"))
    assert (after["paid_cents"], after["adjusted_cents"], after["balance_cents"]) == (4000, 12000, 0)


async def test_a_bill_with_only_adjustments_cancels_and_statements_show_them(practice: Practice) -> None:
    bill = await a_bill(practice)
    cid = bill["client_id"]
    assert (await adjust(practice, bill["id"], 16000)).status_code == 201
    assert (await practice.bill(bill["id"]))["status"] == "closed"
    r = await practice.post("/v1/statements", {"client_id": cid, "start_date": "2000-01-01", "end_date": "2099-12-31"})
    statement = r.json()
    assert [e["kind"] for e in statement["entries"]] == ["charge", "adjustment"]
    assert statement["entries"][1]["description"] == f"Write-off on bill #{bill['number']}"
    assert statement["entries"][1]["amount_cents"] == -16000
    assert statement["adjustments_cents"] == 16000 and statement["closing_balance_cents"] == 0

    r = await practice.post(f"/v1/bills/{bill['id']}/cancel", {})
    assert r.status_code == 200, r.text
    assert await practice.unbilled_ids(cid) == [bill["lines"][0]["session_id"]]
    r = await practice.post(f"/v1/bills/{bill['id']}/adjustments", {"amount_cents": 1, "kind": "discount",
                                                                     "reason": "x"})  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "bill_cancelled"
    r = await practice.post("/v1/statements", {"client_id": cid, "start_date": "2000-01-01", "end_date": "2099-12-31"})
    statement = r.json()
    assert [e["kind"] for e in statement["entries"]] == ["charge", "adjustment", "cancellation"]
    assert statement["closing_balance_cents"] == 0, "the cancellation takes off only what was still charged"


async def test_the_drift_check_includes_adjustments(practice: Practice) -> None:
    bill = await a_bill(practice)
    assert (await adjust(practice, bill["id"], 16000)).status_code == 201
    assert (await practice.get("/v1/checks/balances")).json()["drift_count"] == 0
    async with practice.svc.db.transaction() as db:
        await db.execute(update(bills).where(bills.c.id == uuid.UUID(bill["id"])).values(adjusted_cents=0))
    report = (await practice.get("/v1/checks/balances")).json()
    assert [(d["field"], d["stored"], d["derived"]) for d in report["drift"]] == [("adjusted_cents", 0, 16000)]
    async with practice.svc.db.transaction() as db:
        await db.execute(
            update(bills).where(bills.c.id == uuid.UUID(bill["id"])).values(adjusted_cents=16000, status="paid")
        )
    report = (await practice.get("/v1/checks/balances")).json()
    assert [(d["field"], d["stored"], d["derived"]) for d in report["drift"]] == [("status", "paid", "closed")]


async def _status(practice: Practice, bill_id: str, status: str) -> dict[str, Any] | None:
    bill = await practice.bill(bill_id)
    return bill if bill["status"] == status else None


async def test_the_asyncapi_document_lists_the_adjustment_events(practice: Practice) -> None:
    channels = json.dumps((await practice.http.get("/asyncapi.json")).json())
    for name in ("BillAdjusted", "BillAdjustmentReversed", "BillCreated", "AllocationRejected"):
        assert f"billing.events:{name}" in channels, name
