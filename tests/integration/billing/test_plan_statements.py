"""A client's payment plan (payments' PaymentPlan* events) shows on their statement with the
installments still to come; an ended plan does not."""

import datetime as dt
import json

import pytest

from shared import topics
from shared.events import PaymentPlanCancelled, PaymentPlanCreated, PaymentPlanInfo, PlanInstallment, new_envelope
from tests.conftest import eventually
from tests.integration.billing.test_statements import uid

pytestmark = pytest.mark.integration


async def test_the_statement_lists_an_active_plans_installments_to_come(practice) -> None:
    cid = uid("client")
    await practice.client(cid)
    today = dt.datetime.now(dt.UTC).date()
    schedule = [
        PlanInstallment(due_date=today - dt.timedelta(days=1), amount_cents=3334, status="paid", payment_id="p1"),
        PlanInstallment(due_date=today + dt.timedelta(days=30), amount_cents=3334, status="scheduled"),
        PlanInstallment(due_date=today + dt.timedelta(days=60), amount_cents=3333, status="scheduled"),
    ]
    plan = PaymentPlanInfo(id=uid("plan"), client_id=cid, status="active", total_cents=10001, bill_ids=["b1"],
                           frequency="monthly", schedule=schedule)  # fmt: skip

    async def publish(event: object) -> None:
        body = json.loads(new_envelope(practice.id, event).model_dump_json())  # type: ignore[arg-type]
        await practice.publish(topics.PAYMENTS, body, key=cid)

    period = {"client_id": cid, "start_date": (today - dt.timedelta(days=5)).isoformat(), "end_date": today.isoformat()}

    async def statement_with(count: int) -> dict | None:
        r = await practice.post("/v1/statements", period)
        return r.json() if r.status_code == 201 and len(r.json()["payment_plans"]) == count else None

    await publish(PaymentPlanCreated(plan=plan))
    st = await eventually(lambda: statement_with(1))
    [shown] = st["payment_plans"]
    assert (shown["total_cents"], shown["frequency"]) == (10001, "monthly")
    assert [(i["due_date"], i["amount_cents"]) for i in shown["upcoming"]] == [
        ((today + dt.timedelta(days=30)).isoformat(), 3334), ((today + dt.timedelta(days=60)).isoformat(), 3333)
    ]  # fmt: skip

    ended = plan.model_copy(update={"status": "cancelled"})
    await publish(PaymentPlanCancelled(plan=ended))
    assert (await eventually(lambda: statement_with(0)))["payment_plans"] == []
