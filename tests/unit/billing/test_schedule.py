"""When the scheduled jobs are due: across month ends, a leap day and DST changes."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import schedule
from services.billing.domain import RuleViolation
from services.billing.practice import PracticeSettings

NY = "America/New_York"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_daily_run_bills_the_days_before_one_bill_per_session() -> None:
    run = schedule.bill_run("daily", dt.date(2026, 3, 1))
    assert run == schedule.BillRun("2026-03-01", dt.date(2026, 3, 1), per_session=True)


def test_monthly_run_on_the_first_bills_last_month_per_client() -> None:
    assert schedule.bill_run("monthly", dt.date(2027, 1, 1)) == schedule.BillRun(
        "2027-01", dt.date(2027, 1, 1), per_session=False
    )
    # any day of the month is the same run (a late first tick does not make a second one)
    assert schedule.bill_run("monthly", dt.date(2027, 1, 17)).period == "2027-01"


def test_weekly_run_bills_the_weeks_before_monday_across_a_year_end() -> None:
    run = schedule.bill_run("weekly", dt.date(2027, 1, 1))  # a Friday in ISO week 2026-W53
    assert run.period == "2026-W53" and run.before == dt.date(2026, 12, 28)


def test_manual_has_no_run() -> None:
    with pytest.raises(RuleViolation):
        schedule.bill_run("manual", dt.date(2026, 1, 1))


@pytest.mark.parametrize(
    ("chosen", "year", "month", "expected"),
    [
        (31, 2026, 2, dt.date(2026, 2, 28)),
        (31, 2028, 2, dt.date(2028, 2, 29)),  # leap year
        (29, 2027, 2, dt.date(2027, 2, 28)),
        (30, 2028, 2, dt.date(2028, 2, 29)),
        (31, 2026, 4, dt.date(2026, 4, 30)),
        (31, 2026, 5, dt.date(2026, 5, 31)),
        (1, 2026, 2, dt.date(2026, 2, 1)),
    ],
)
def test_superbill_day_falls_back_to_the_last_day_of_short_months(chosen, year, month, expected) -> None:
    assert schedule.superbill_day_in(year, month, chosen) == expected


def test_superbill_run_on_the_leap_day_covers_january() -> None:
    before = schedule.superbill_run(dt.date(2028, 2, 28), 31)
    assert before.due is False and before.period == "2028-01"
    on = schedule.superbill_run(dt.date(2028, 2, 29), 31)
    assert on.due and (on.covers_from, on.covers_to) == (dt.date(2028, 1, 1), dt.date(2028, 1, 31))
    march = schedule.superbill_run(dt.date(2028, 3, 1), 1)
    assert march.due and march.covers_to == dt.date(2028, 2, 29)


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)), st.integers(1, 31))
def test_superbill_runs_exactly_once_a_month(day: dt.date, chosen: int) -> None:
    """The run is due from its day to the month's end, and covers exactly the month before."""
    run = schedule.superbill_run(day, chosen)
    first_due = schedule.superbill_day_in(day.year, day.month, chosen)
    assert run.due == (day >= first_due)
    assert run.covers_to + dt.timedelta(days=1) == day.replace(day=1)
    assert run.covers_from.day == 1 and run.period == f"{run.covers_to:%Y-%m}"


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        # spring forward 2026-03-08: 00:30 EST is 05:30Z, but 00:30 EDT on the 9th is 04:30Z
        ("2026-03-08T04:59:00", dt.date(2026, 3, 7)),
        ("2026-03-08T05:00:00", dt.date(2026, 3, 8)),
        ("2026-03-09T03:59:00", dt.date(2026, 3, 8)),
        ("2026-03-09T04:00:00", dt.date(2026, 3, 9)),
        # fall back 2026-11-01: midnight EDT is 04:00Z, the next midnight (EST) is 05:00Z
        ("2026-11-01T03:59:00", dt.date(2026, 10, 31)),
        ("2026-11-01T04:00:00", dt.date(2026, 11, 1)),
        ("2026-11-02T04:30:00", dt.date(2026, 11, 1)),  # 23:30 EST: still the 1st
        ("2026-11-02T05:00:00", dt.date(2026, 11, 2)),
    ],
)
def test_practice_day_follows_dst(as_of: str, expected: dt.date) -> None:
    assert PracticeSettings(timezone=NY).today(utc(as_of)) == expected


def test_monthly_run_at_midnight_new_year_in_practice_time_not_utc() -> None:
    """At 2027-01-01 02:00Z it is still 2026-12-31 in New York: the December run is not due."""
    today = PracticeSettings(timezone=NY).today(utc("2027-01-01T02:00:00"))
    assert schedule.bill_run("monthly", today).period == "2026-12"
    today = PracticeSettings(timezone=NY).today(utc("2027-01-01T05:01:00"))
    assert schedule.bill_run("monthly", today).period == "2027-01"


def test_share_before_autopay_warning() -> None:
    assert schedule.share_before_autopay(dt.timedelta(hours=0), dt.time(0, 30))
    assert not schedule.share_before_autopay(dt.timedelta(hours=1), dt.time(0, 30))
    assert schedule.share_before_autopay(dt.timedelta(hours=2), dt.time(2, 0))
    settings = PracticeSettings(auto_share_bills=True, bill_creation="daily", auto_share_delay_hours=0)
    [warning] = settings.setting_warnings()
    assert warning.code == "auto_share_before_autopay" and "at least 1 h" in warning.message
    assert (
        PracticeSettings(auto_share_bills=True, bill_creation="daily", auto_share_delay_hours=1).setting_warnings()
        == []
    )
    assert PracticeSettings(auto_share_bills=True, auto_share_delay_hours=0).setting_warnings() == []  # manual bills
