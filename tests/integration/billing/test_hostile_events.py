"""Events billing must refuse whole, with the reason in the DLQ: a payment fact of one practice
naming another practice's bill (the bill neither moves nor changes), and text with a NUL
character (Postgres cannot store it; the error must not carry the client's name anywhere)."""

import dataclasses
import uuid

import pytest
from sqlalchemy import select

from services.billing.db import clients
from shared import topics
from tests.conftest import dead_letter
from tests.integration.billing.conftest import Practice

pytestmark = pytest.mark.integration


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_a_payment_of_another_practice_naming_our_bill_is_dead_lettered(practice: Practice) -> None:
    cid, sid = f"c-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    other = dataclasses.replace(practice, id=f"practice-{uuid.uuid4().hex[:8]}")

    _, event = await other.payment(cid, [(bill["id"], bill["balance_cents"])])

    headers = await dead_letter(practice.svc.settings, topics.PAYMENTS, event["event_id"])
    assert headers["error-type"] == "PracticeMismatch"
    assert f"bill {bill['id']} belongs to another practice" in headers["error"]
    after = await practice.bill(bill["id"])
    assert (after["paid_cents"], after["status"]) == (0, "open")


@pytest.mark.expect_dlq
@pytest.mark.expect_error_log
async def test_an_event_with_a_nul_character_is_dead_lettered_without_the_name(practice: Practice) -> None:
    cid = f"c-{uuid.uuid4().hex[:6]}"
    event = await practice.client(cid, first_name="Zebediah\x00Quillfeather")

    headers = await dead_letter(practice.svc.settings, topics.SCHEDULING, event["event_id"])
    assert headers["error"] == "invalid envelope: contains a NUL character"
    assert headers["attempts"] == "0"
    assert not any("Zebediah" in v or "Quillfeather" in v for v in headers.values())
    async with practice.svc.db.transaction() as session:
        assert await session.scalar(select(clients.c.id).where(clients.c.id == cid)) is None
