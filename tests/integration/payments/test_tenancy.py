"""A forged or mistaken billing event cannot move a bill to another practice: payments' bill
projection is keyed by (practice_id, id), and an event naming a bill another practice holds is
dead-lettered with the reason."""

import pytest
from sqlalchemy import select

from services.payments.db import bills
from shared import topics
from shared.runtime import Service
from tests.conftest import dead_letter, eventually
from tests.integration.payments.conftest import bill_event, new_id, snapshot


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_an_event_of_another_practice_naming_our_bill_is_dead_lettered(svc: Service, publish) -> None:
    ours, theirs, bill_id, client_id = new_id("p"), new_id("p"), new_id("b"), new_id("c")
    await publish(
        topics.BILLING,
        bill_event("BillCreated", ours, snapshot(bill_id, client_id, client_owes=10000)),
        settings=svc.settings,
    )

    async def row():
        async with svc.db.transaction() as s:
            return (await s.execute(select(bills).where(bills.c.id == bill_id))).all()

    await eventually(row)
    forged = bill_event("BillCreated", theirs, snapshot(bill_id, client_id, client_owes=1, version=2, access_code="0"))
    await publish(topics.BILLING, forged, settings=svc.settings)

    headers = await dead_letter(svc.settings, topics.BILLING, forged["event_id"])
    assert headers["error-type"] == "PracticeMismatch"
    assert f"bill {bill_id} belongs to another practice" in headers["error"]
    [kept] = await row()
    assert (kept.practice_id, kept.client_owes_cents, kept.version, kept.access_code) == (ours, 10000, 1, "123456")
