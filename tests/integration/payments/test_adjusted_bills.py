"""Payments learns a bill's open amount net of adjustments from billing's BillUpdated: a
payment never lands on written-off cents (the rest becomes credit), and a reversal reopens them."""

from typing import Any

import pytest

from services.payments.db import bills
from shared import topics
from tests.conftest import eventually
from tests.integration.payments.conftest import bill_event, new_id, snapshot, staff

pytestmark = pytest.mark.integration


def with_adjustment(bill: dict[str, Any], amount: int, *, version: int, reversed_at: str | None = None) -> dict:
    adjustment = {"id": "adj-1", "payer": "client", "amount_cents": amount, "kind": "write_off", "reason": "hardship",
                  "created_at": "2026-11-03T10:00:00Z", "reversed_at": reversed_at}  # fmt: skip
    standing = 0 if reversed_at else amount
    return bill | {"adjustments": [adjustment], "adjusted_cents": standing, "version": version,
                   "balance_cents": bill["total_cents"] - standing}  # fmt: skip


async def test_a_written_off_part_takes_no_payment_and_a_reversal_reopens_it(svc, http, publish) -> None:
    practice, client, bill_id = new_id("p"), new_id("c"), new_id("bill")
    bill = snapshot(bill_id, client, client_owes=16000)

    async def announce(event_type: str, body: dict[str, Any]) -> None:
        await publish(topics.BILLING, bill_event(event_type, practice, body), key=client, settings=svc.settings)

        async def projected() -> bool:
            async with svc.db.transaction() as db:
                version = await db.scalar(
                    bills.select().with_only_columns(bills.c.version).where(bills.c.id == bill_id)
                )
            return version == body["version"]

        await eventually(projected)

    async def pay(amount: int) -> dict[str, Any]:
        r = await http.post("/v1/payments", json={"client_id": client, "bill_id": bill_id, "method": "cash",
                                                  "amount_cents": amount}, headers=staff(practice))  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()

    await announce("BillCreated", bill)
    await announce("BillUpdated", with_adjustment(bill, 6000, version=2))
    paid = await pay(16000)
    assert paid["allocations"] == [{"bill_id": bill_id, "amount_cents": 10000}]
    assert paid["credit_cents"] == 6000, "the written-off 6000 is the client's credit, not applied"

    await announce("BillUpdated", with_adjustment(bill, 6000, version=3, reversed_at="2026-11-04T10:00:00Z"))
    assert (await pay(6000))["allocations"] == [{"bill_id": bill_id, "amount_cents": 6000}], "owed again"
