"""Payment plan rules: the schedule adds up exactly to the open balance, the remainder cent by
cent on the first installments; due dates by frequency; three failures in a row default."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments import domain
from services.payments.domain import PaymentRuleError


@given(
    total=st.integers(min_value=1, max_value=10**9),
    installments=st.integers(min_value=1, max_value=domain.PLAN_MAX_INSTALLMENTS),
    frequency=st.sampled_from(["weekly", "biweekly", "monthly"]),
    start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 12, 31)),
)
def test_the_schedule_adds_up_exactly_with_the_remainder_on_the_first_installments(
    total: int, installments: int, frequency: domain.Frequency, start: dt.date
) -> None:
    if installments > total:
        with pytest.raises(PaymentRuleError):
            domain.plan_schedule(total, installments, frequency, start)
        return
    schedule = domain.plan_schedule(total, installments, frequency, start)
    amounts = [i.amount_cents for i in schedule]
    assert sum(amounts) == total and len(amounts) == installments
    assert amounts == sorted(amounts, reverse=True) and max(amounts) - min(amounts) <= 1
    assert amounts.count(total // installments + 1) == total % installments
    dates = [i.due_date for i in schedule]
    assert dates[0] == start and dates == sorted(dates) and len(set(dates)) == installments


def test_due_dates_by_frequency() -> None:
    start = dt.date(2026, 1, 31)
    assert [domain.installment_date(start, "weekly", n) for n in range(3)] == [
        dt.date(2026, 1, 31), dt.date(2026, 2, 7), dt.date(2026, 2, 14)
    ]  # fmt: skip
    assert domain.installment_date(start, "biweekly", 2) == dt.date(2026, 2, 28)
    assert [domain.installment_date(start, "monthly", n) for n in range(4)] == [
        dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31), dt.date(2026, 4, 30)
    ]  # fmt: skip
    assert domain.installment_date(dt.date(2026, 11, 15), "monthly", 2) == dt.date(2027, 1, 15)


def test_ten_dollars_in_three() -> None:
    assert [i.amount_cents for i in domain.plan_schedule(1000, 3, "monthly", dt.date(2026, 12, 1))] == [334, 333, 333]


@pytest.mark.parametrize(("total", "installments"), [(0, 1), (100, 0), (100, 121), (2, 3)])
def test_refused_schedules(total: int, installments: int) -> None:
    with pytest.raises(PaymentRuleError):
        domain.plan_schedule(total, installments, "weekly", dt.date(2026, 12, 1))


def test_installment_charge_is_capped_and_the_last_catches_up() -> None:
    assert domain.installment_charge(3000, 10000, last=False) == 3000
    assert domain.installment_charge(3000, 1200, last=False) == 1200
    assert domain.installment_charge(3000, 6000, last=True) == 6000
    assert domain.installment_charge(3000, 0, last=True) == 0


def test_three_failed_installments_in_a_row_default_and_a_paid_one_resets() -> None:
    assert domain.after_installment(1, failed=False) == domain.NightOutcome(0, False)
    assert domain.after_installment(1, failed=True) == domain.NightOutcome(2, False)
    assert domain.after_installment(2, failed=True) == domain.NightOutcome(3, True)
