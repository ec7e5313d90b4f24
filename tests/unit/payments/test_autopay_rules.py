"""Autopay rules, pure: which night is due (practice timezone, DST), the card order, and the
run of failed nights that turns autopay off."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import AUTOPAY_MAX_FAILED_NIGHTS, AutopayCard, after_night, autopay_cards, autopay_night

NY = "America/New_York"
HALF_PAST = dt.time(0, 30)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("as_of", "night"),
    [
        ("2026-03-08T05:29:00", "2026-03-07"),  # 00:29 EST
        ("2026-03-08T05:30:00", "2026-03-08"),  # 00:30 EST, the night of the spring-forward
        ("2026-03-09T04:29:00", "2026-03-08"),  # 00:29 EDT
        ("2026-03-09T04:30:00", "2026-03-09"),  # 00:30 EDT: an hour earlier in UTC
        ("2026-11-01T04:30:00", "2026-11-01"),  # 00:30 EDT, the night of the fall-back
        ("2026-11-02T05:29:00", "2026-11-01"),  # 00:29 EST
        ("2026-11-02T05:30:00", "2026-11-02"),
        ("2028-02-29T05:30:00", "2028-02-29"),  # the leap day
        ("2028-03-01T05:29:00", "2028-02-29"),
        ("2027-01-01T05:30:00", "2027-01-01"),
        ("2027-01-01T05:29:00", "2026-12-31"),  # across a year end
    ],
)
def test_the_night_due_is_in_practice_time(as_of: str, night: str) -> None:
    assert autopay_night(utc(as_of), NY, HALF_PAST) == dt.date.fromisoformat(night)


def test_a_run_time_inside_the_spring_forward_gap_still_runs_that_night() -> None:
    """02:30 does not exist on 2026-03-08 in New York; at 03:00 EDT the night is due."""
    assert autopay_night(utc("2026-03-08T06:59:00"), NY, dt.time(2, 30)) == dt.date(2026, 3, 7)  # 01:59 EST
    assert autopay_night(utc("2026-03-08T07:00:00"), NY, dt.time(2, 30)) == dt.date(2026, 3, 8)  # 03:00 EDT


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=st.just(dt.UTC)))
def test_each_night_is_due_once_and_in_order(as_of: dt.datetime) -> None:
    """Nights never go backwards and never skip as time goes on, DST or not."""
    now = autopay_night(as_of, NY, HALF_PAST)
    later = autopay_night(as_of + dt.timedelta(hours=1), NY, HALF_PAST)
    assert 0 <= (later - now).days <= 1


def test_a_minors_billing_contact_cards_come_first_then_the_autopay_card() -> None:
    cards = [
        AutopayCard("own", "client", True),
        AutopayCard("mum-old", "billing_contact", False),
        AutopayCard("mum", "billing_contact", True),
    ]
    assert autopay_cards("own", cards, is_minor=True) == ["mum", "mum-old", "own"]
    assert autopay_cards("mum-old", cards, is_minor=True) == ["mum", "mum-old"]
    assert autopay_cards("own", cards, is_minor=False) == ["own"]


def test_three_failed_nights_in_a_row_turn_autopay_off_and_a_good_night_resets() -> None:
    failed = 0
    for _ in range(AUTOPAY_MAX_FAILED_NIGHTS - 1):
        outcome = after_night(failed, failed=True)
        assert not outcome.disable
        failed = outcome.failed_nights
    assert after_night(failed, failed=False).failed_nights == 0
    assert after_night(failed, failed=True).disable and AUTOPAY_MAX_FAILED_NIGHTS == 3
