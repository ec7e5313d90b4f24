"""The Reports page's month labels (pure)."""

from services.web.staff.reports import month_name


def test_month_keys_read_as_month_and_year() -> None:
    assert month_name("2026-11") == "Nov 2026"
    assert month_name("2027-01") == "Jan 2027"


def test_a_key_that_is_not_a_month_is_shown_as_it_is() -> None:
    assert month_name(None) == ""
    assert month_name("unknown") == "unknown"
