"""Payment plans against real Kafka, Postgres and localstripe: a schedule that adds up to the
open balance, each installment charged once by the nightly run and applied oldest bill first,
plain autopay leaving plan bills alone, completion when the bills are paid another way, and
default after three failed installments in a row."""

import json
from typing import Any

import pytest

from services.payments import plans
from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import (
    DECLINES,
    as_client,
    bill_event,
    new_id,
    payment_events,
    snapshot,
    staff,
)
from tests.integration.payments.test_adjusted_bills import with_adjustment
from tests.integration.payments.test_autopay import autopay_client, open_bill, payments_of, run, setup_practice
from tests.integration.payments.test_stripe import add_card

pytestmark = pytest.mark.integration


async def start_plan(http, practice: str, client: str, bill_ids: list[str], card_id: str, **kw: Any) -> Any:
    body = {"bill_ids": bill_ids, "installments": 3, "frequency": "monthly", "start_date": "2027-01-04",
            "card_id": card_id} | kw  # fmt: skip
    return await http.post(f"/v1/clients/{client}/payment-plans", json=body, headers=staff(practice))


async def plan_of(http, practice: str, plan_id: str) -> dict[str, Any]:
    r = await http.get(f"/v1/payment-plans/{plan_id}", headers=staff(practice))
    assert r.status_code == 200, r.text
    return r.json()


async def test_installments_are_charged_once_oldest_bill_first_and_the_plan_completes(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    newer = await open_bill(svc, publish, practice, client, 3001, number=2)
    older = await open_bill(svc, publish, practice, client, 7000, number=1)
    card = await autopay_client(svc, http, practice, client)  # plain autopay is on too: it must leave them alone
    r = await start_plan(http, practice, client, [newer, older], card["id"])
    assert r.status_code == 201, r.text
    plan = r.json()
    assert (plan["status"], plan["total_cents"], plan["bill_ids"]) == ("active", 10001, [older, newer])
    assert [(i["due_date"], i["amount_cents"], i["status"]) for i in plan["schedule"]] == [
        ("2027-01-04", 3334, "scheduled"), ("2027-02-04", 3334, "scheduled"), ("2027-03-04", 3333, "scheduled")
    ]  # fmt: skip

    before = await run(http, practice, "2027-01-03T12:00:00Z")
    assert before["items"] == [] and before["plan_installments"] == []  # nothing due, autopay skips plan bills
    first = await run(http, practice, "2027-01-04T12:00:00Z")
    assert first["items"] == []
    assert [(i["installment"], i["outcome"], i["amount_cents"]) for i in first["plan_installments"]] == [
        (1, "paid", 3334)
    ]
    again = await run(http, practice, "2027-01-04T13:00:00Z")  # a rerun of the night charges nothing more
    assert again["plan_installments"] == []
    [payment] = await payments_of(http, practice, older)
    assert payment["allocations"] == [{"bill_id": older, "amount_cents": 3334}] and payment["status"] == "succeeded"
    assert await payments_of(http, practice, newer) == []
    plan = await plan_of(http, practice, plan["id"])
    assert [(i["status"], i["payment_id"]) for i in plan["schedule"]] == [
        ("paid", payment["id"]), ("scheduled", None), ("scheduled", None)
    ]  # fmt: skip

    second = await run(http, practice, "2027-02-04T12:00:00Z")
    [inst] = second["plan_installments"]
    [paid, _] = await payments_of(http, practice, older)  # newest first
    assert inst["payment_id"] == paid["id"] and inst["outcome"] == "paid"
    assert paid["allocations"] == [{"bill_id": older, "amount_cents": 3334}]

    # the client pays the rest in cash: the plan completes and the last installment is skipped
    left_older, left_newer = 7000 - 6668, 3001
    cash = {"client_id": client, "method": "cash", "amount_cents": left_older + left_newer,
            "allocations": [{"bill_id": older, "amount_cents": left_older},
                            {"bill_id": newer, "amount_cents": left_newer}]}  # fmt: skip
    assert (await http.post("/v1/payments", json=cash, headers=staff(practice))).status_code == 201
    plan = await plan_of(http, practice, plan["id"])
    assert plan["status"] == "completed"
    assert [i["status"] for i in plan["schedule"]] == ["paid", "paid", "skipped"]
    assert (await run(http, practice, "2027-03-04T12:00:00Z"))["plan_installments"] == []

    def done(events: list[dict[str, Any]]) -> bool:
        return any(e["event_type"] == "PaymentPlanCompleted" for e in events)

    events = await payment_events(svc.settings, client, done)
    [created] = [e["data"]["plan"] for e in events if e["event_type"] == "PaymentPlanCreated"]
    assert created["total_cents"] == 10001 and [i["amount_cents"] for i in created["schedule"]] == [3334, 3334, 3333]
    receipts = [e["data"] for e in events if e["event_type"] == "PaymentRecorded"]
    assert [r["payment"]["method"] for r in receipts] == ["card", "card", "cash"]


async def test_the_last_installment_catches_up_what_is_open(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill = await open_bill(svc, publish, practice, client, 1000)
    card = await add_card(svc, http, practice, client)
    plan = (await start_plan(http, practice, client, [bill], card["id"], installments=2, frequency="weekly")).json()
    assert [(i["due_date"], i["amount_cents"]) for i in plan["schedule"]] == [("2027-01-04", 500), ("2027-01-11", 500)]
    # both due on one night (a missed run): charged in order, each once, the bill paid in full
    result = await run(http, practice, "2027-01-12T12:00:00Z")
    assert [(i["installment"], i["outcome"], i["amount_cents"]) for i in result["plan_installments"]] == [
        (1, "paid", 500),
        (2, "paid", 500),
    ]
    plan = await plan_of(http, practice, plan["id"])
    assert plan["status"] == "completed" and [i["status"] for i in plan["schedule"]] == ["paid", "paid"]


async def test_three_failed_installments_in_a_row_default_the_plan(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill = await open_bill(svc, publish, practice, client, 8000)
    card = await add_card(svc, http, practice, client, number=DECLINES)
    r = await start_plan(http, practice, client, [bill], card["id"], installments=4, frequency="weekly")
    plan = r.json()
    for night in ("2027-01-04", "2027-01-11", "2027-01-11", "2027-01-18"):  # the rerun charges nothing
        await run(http, practice, f"{night}T12:00:00Z")
    plan = await plan_of(http, practice, plan["id"])
    assert plan["status"] == "defaulted" and plan["failed_in_row"] == 3
    assert [i["status"] for i in plan["schedule"]] == ["failed", "failed", "failed", "skipped"]
    assert [p["status"] for p in await payments_of(http, practice, bill)] == ["failed"] * 3
    assert (await run(http, practice, "2027-01-25T12:00:00Z"))["plan_installments"] == []

    def done(events: list[dict[str, Any]]) -> bool:
        return any(e["event_type"] == "PaymentPlanDefaulted" for e in events)

    events = await payment_events(svc.settings, client, done)
    failed = [e["data"] for e in events if e["event_type"] == "PaymentFailed"]
    assert len(failed) == 3 and all(f["autopay"] and f["bill_id"] == bill for f in failed)
    [defaulted] = [e["data"] for e in events if e["event_type"] == "PaymentPlanDefaulted"]
    assert defaulted["failed_in_row"] == 3 and defaulted["plan"]["status"] == "defaulted"


async def test_a_write_off_of_what_is_left_completes_the_plan_and_skips_the_rest(svc, http, publish) -> None:
    """A plan ends `completed` when its bills are settled by any means: here billing writes off
    what the installments had not paid (BillUpdated, status closed)."""
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill = await open_bill(svc, publish, practice, client, 6000)
    card = await add_card(svc, http, practice, client)
    plan = (await start_plan(http, practice, client, [bill], card["id"])).json()
    first = await run(http, practice, "2027-01-04T12:00:00Z")
    assert [(i["outcome"], i["amount_cents"]) for i in first["plan_installments"]] == [("paid", 2000)]

    written_off = with_adjustment(snapshot(bill, client, client_owes=6000), 4000, version=2) | {"status": "closed"}
    await publish(topics.BILLING, bill_event("BillUpdated", practice, written_off), key=client, settings=svc.settings)

    async def completed() -> dict[str, Any] | None:
        seen = await plan_of(http, practice, plan["id"])
        return seen if seen["status"] == "completed" else None

    plan = await eventually(completed)
    assert [i["status"] for i in plan["schedule"]] == ["paid", "skipped", "skipped"]
    assert (await run(http, practice, "2027-02-04T12:00:00Z"))["plan_installments"] == []
    assert len(await payments_of(http, practice, bill)) == 1, "nothing charged after the write-off"

    def done(events: list[dict[str, Any]]) -> bool:
        return any(e["event_type"] == "PaymentPlanCompleted" for e in events)

    events = await payment_events(svc.settings, client, done)
    [ended] = [e["data"]["plan"] for e in events if e["event_type"] == "PaymentPlanCompleted"]
    assert ended["status"] == "completed" and [i["status"] for i in ended["schedule"]] == ["paid", "skipped", "skipped"]


async def test_plan_rules_access_and_cancel(svc, http, publish) -> None:
    practice = await setup_practice(svc, publish)
    client, other = new_id("c"), new_id("c")
    bill = await open_bill(svc, publish, practice, client, 5000)
    others_bill = await open_bill(svc, publish, practice, other, 5000, number=2)
    card = await add_card(svc, http, practice, client)
    unsigned = await add_card(svc, http, practice, client, authorization=None)

    async def refused(status: int, code: str, bill_ids: list[str], card_id: str, **kw: Any) -> None:
        r = await start_plan(http, practice, client, bill_ids, card_id, **kw)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text

    await refused(409, "card_not_authorized", [bill], unsigned["id"])
    await refused(404, "not_found", [others_bill], card["id"])
    await refused(422, "validation_error", [bill], card["id"], frequency="daily")
    await refused(422, "start_date_in_past", [bill], card["id"], start_date="2020-01-01")
    r = await http.post(f"/v1/clients/{client}/payment-plans", headers=as_client(practice, client),
                        json={"bill_ids": [bill], "installments": 2, "frequency": "weekly",
                              "start_date": "2027-01-04", "card_id": card["id"]})  # fmt: skip
    assert r.status_code == 403
    plan = (await start_plan(http, practice, client, [bill], card["id"])).json()
    await refused(409, "bill_on_plan", [bill], card["id"])

    mine = await http.get(f"/v1/clients/{client}/payment-plans", headers=as_client(practice, client))
    assert [p["id"] for p in mine.json()["items"]] == [plan["id"]]
    assert (await http.get(f"/v1/payment-plans/{plan['id']}", headers=as_client(practice, client))).status_code == 200
    assert (await http.get(f"/v1/payment-plans/{plan['id']}", headers=as_client(practice, other))).status_code == 404
    assert (await http.get(f"/v1/payment-plans/{plan['id']}", headers=staff(new_id("p")))).status_code == 404

    r = await http.post(f"/v1/payment-plans/{plan['id']}/cancel", headers=staff(practice))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert {i["status"] for i in r.json()["schedule"]} == {"skipped"}
    r = await http.post(f"/v1/payment-plans/{plan['id']}/cancel", headers=staff(practice))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "plan_not_active")
    assert (await run(http, practice, "2027-01-04T12:00:00Z"))["plan_installments"] == []
    assert (await start_plan(http, practice, client, [bill], card["id"])).status_code == 201  # free again


async def test_the_asyncapi_document_lists_the_plan_events(http) -> None:
    channels = json.dumps((await http.get("/asyncapi.json")).json())
    for event in ("PaymentPlanCreated", "PaymentPlanDefaulted", "PaymentPlanCompleted", "PaymentPlanCancelled"):
        assert event in channels


async def test_a_run_that_crashed_mid_charge_is_finished_by_the_rerun_with_one_charge(
    svc, http, publish, monkeypatch
) -> None:
    practice = await setup_practice(svc, publish)
    client = new_id("c")
    bill = await open_bill(svc, publish, practice, client, 9000)
    card = await add_card(svc, http, practice, client)
    plan = (await start_plan(http, practice, client, [bill], card["id"])).json()
    real = plans.record_payment

    async def crash_after_charging(*args: Any, **kw: Any) -> Any:
        await real(*args, **kw)
        raise RuntimeError("replica killed after the charge, before it was noted")

    monkeypatch.setattr(plans, "record_payment", crash_after_charging)
    with pytest.raises(RuntimeError):
        await run(http, practice, "2027-01-04T12:00:00Z")
    monkeypatch.setattr(plans, "record_payment", real)
    rerun = await run(http, practice, "2027-01-04T12:00:00Z")
    [payment] = await payments_of(http, practice, bill)
    assert [(i["outcome"], i["payment_id"]) for i in rerun["plan_installments"]] == [("paid", payment["id"])]
    assert (payment["status"], payment["amount_cents"]) == ("succeeded", 3000)
    assert [i["status"] for i in (await plan_of(http, practice, plan["id"]))["schedule"]] == [
        "paid", "scheduled", "scheduled"
    ]  # fmt: skip
