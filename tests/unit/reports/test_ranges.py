"""The date ranges the reports turn into timestamps and whole months: exact for ordinary dates,
never out of range at the ends a query string can name."""

import datetime as dt

from services.reports.queries import Practice, whole_months

D = dt.date


def test_a_day_in_the_practice_timezone_and_the_far_ends() -> None:
    tokyo = Practice("p", "Asia/Tokyo", "JPY")
    lo, hi = tokyo.bounds(D(2026, 10, 1), D(2026, 10, 31))
    assert (lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)) == (
        dt.datetime(2026, 9, 30, 15, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 31, 15, tzinfo=dt.UTC),
    )
    lo, hi = tokyo.bounds(D.min, D.max)  # midnight of 0001-01-01 in Tokyo is before year 1 in UTC
    assert lo.year == 1900 and hi.year == 9999


def test_whole_months_within_a_range() -> None:
    assert whole_months(D(2026, 10, 1), D(2026, 12, 31)) == (D(2026, 10, 1), D(2027, 1, 1))
    assert whole_months(D(2026, 10, 3), D(2026, 12, 30)) == (D(2026, 11, 1), D(2026, 12, 1))
    assert whole_months(D(2026, 10, 3), D(2026, 10, 30)) == (D(2026, 10, 3), D(2026, 10, 3))  # none
    assert whole_months(D(2024, 2, 1), D(2024, 2, 29)) == (D(2024, 2, 1), D(2024, 3, 1))
    assert whole_months(D.min, D.max) == (D.min, D(9999, 12, 1))  # December 9999 from the lines
