"""Payment plan emails: the schedule when a plan starts, the notice when it defaults."""

import datetime as dt

from services.notifications import domain
from services.notifications.compose import render
from shared.events import PaymentPlanInfo, PlanInstallment


def plan() -> PaymentPlanInfo:
    schedule = [
        PlanInstallment(due_date=dt.date(2027, 1, 4), amount_cents=3334, status="scheduled"),
        PlanInstallment(due_date=dt.date(2027, 2, 4), amount_cents=3333, status="scheduled"),
    ]
    return PaymentPlanInfo(id="plan-1", client_id="c-1", status="active", total_cents=6667, bill_ids=["b-1"],
                           frequency="monthly", card_brand="visa", card_last4="4242", schedule=schedule)  # fmt: skip


def test_the_schedule_email_lists_every_installment_and_the_card() -> None:
    draft = domain.plan_schedule(plan(), "Rivers Edge Counseling", "USD", "Grace Park")
    assert draft.kind == "payment_plan_schedule"
    assert draft.subject == "Your payment plan with Rivers Edge Counseling: 2 payments of your $66.67 balance"
    bodies = render(draft)
    for text in (bodies.text, bodies.html):
        assert "2027-01-04" in text and "$33.34" in text and "2027-02-04" in text and "$33.33" in text
        assert "Visa ending in 4242" in text
    assert "Dear Grace Park" in bodies.text


def test_the_defaulted_notice_says_why_and_that_the_balance_is_open() -> None:
    draft = domain.plan_defaulted(plan(), "Rivers Edge Counseling", "USD", "Grace Park", 3)
    assert draft.subject == "Your payment plan with Rivers Edge Counseling has ended"
    bodies = render(draft)
    assert "3 payments in a row" in bodies.text and "still open" in bodies.text
    assert "3 payments in a row" in bodies.html
