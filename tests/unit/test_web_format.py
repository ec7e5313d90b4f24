"""The web console's money and time formatting: the practice's currency and timezone."""

import datetime as dt

import pytest

from services.web import format as fmt


def test_money_in_the_practice_currency() -> None:
    assert fmt.money(1234567) == "$12,345.67"
    assert fmt.money(5, "usd") == "$0.05"
    assert fmt.money(-2000) == "−$20.00"
    assert fmt.money(10000, "EUR") == "€100.00"
    assert fmt.money(10000, "CHF") == "100.00 CHF"
    assert fmt.money(None) == ""


@pytest.mark.parametrize(("text", "cents"), [("150", 15000), ("$1,234.5", 123450), (" 0.07 ", 7), ("12.30", 1230)])
def test_parse_money(text: str, cents: int) -> None:
    assert fmt.parse_money(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "-5", "1.234", "nan", "inf"])
def test_parse_money_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(ValueError):
        fmt.parse_money(text)


def test_times_in_the_practice_timezone_across_dst() -> None:
    assert fmt.datetime_text("2026-11-02T23:05:00Z", "America/Los_Angeles") == "Nov 2, 2026, 3:05 PM PST"
    assert fmt.datetime_text("2026-07-02T23:05:00+00:00", "America/Los_Angeles") == "Jul 2, 2026, 4:05 PM PDT"
    assert fmt.date_text("2026-11-02") == "Nov 2, 2026"


def test_local_input_round_trip() -> None:
    instant = fmt.from_local_input("2026-03-08T09:30", "America/New_York")
    assert instant == dt.datetime(2026, 3, 8, 13, 30, tzinfo=dt.UTC)
    assert fmt.local_input(instant, "America/New_York") == "2026-03-08T09:30"
