"""Payment plans by email over real Kafka, Postgres and SMTP: the schedule when a plan starts,
the notice when it defaults (receipts and failure notices are the payment ones)."""

import datetime as dt

import pytest

from shared import topics
from shared.events import PaymentPlanCreated, PaymentPlanDefaulted, PaymentPlanInfo, PlanInstallment
from tests.conftest import eventually
from tests.integration.notifications.conftest import Running
from tests.integration.notifications.test_emails import adult_client
from tests.unit.notifications import samples

pytestmark = pytest.mark.integration


async def test_plan_schedule_and_default_are_emailed_to_the_client(notifications: Running, publish) -> None:
    n = notifications
    client_id, address = await adult_client(n, publish)

    schedule = [PlanInstallment(due_date=dt.date(2027, 1, 4) + dt.timedelta(weeks=k), amount_cents=2500,
                                status="scheduled") for k in range(4)]  # fmt: skip
    plan = PaymentPlanInfo(id="plan-1", client_id=client_id, status="active", total_cents=10000, bill_ids=["b-1"],
                           frequency="weekly", card_brand="visa", card_last4="4242", schedule=schedule)  # fmt: skip
    await publish(topics.PAYMENTS, samples.envelope(PaymentPlanCreated(plan=plan)), key=client_id, settings=n.settings)
    [started] = await eventually(lambda: n.inbox.to(address) or None)
    assert "payment plan" in started["Subject"]
    text = started.get_body(("plain",)).get_content()
    assert all(d in text for d in ("2027-01-04", "2027-01-11", "2027-01-18", "2027-01-25")) and "$25.00" in text

    ended = plan.model_copy(update={"status": "defaulted"})
    defaulted = samples.envelope(PaymentPlanDefaulted(plan=ended, failed_in_row=3))
    await publish(topics.PAYMENTS, defaulted, key=client_id, settings=n.settings)
    messages = await eventually(lambda: n.inbox.to(address) if len(n.inbox.to(address)) >= 2 else None)
    assert messages[1]["Subject"].endswith("has ended")
    assert "3 payments in a row" in messages[1].get_body(("plain",)).get_content()

    async def both() -> list | None:
        feed = await n.feed(client_id)
        return feed if len(feed) >= 2 else None

    feed = await eventually(both)
    assert sorted(f["kind"] for f in feed) == ["payment_plan_defaulted", "payment_plan_schedule"]
