"""The portal's amount field: what a person types becomes cents, or is refused; it never means
"the whole balance"."""

import pytest

from services.web.portal.documents import parse_amount


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("50", 5000), ("$50", 5000), ("50.5", 5050), ("50.05", 5005), (" $1,234.50 ", 123450), ("0.99", 99)],
)
def test_amounts_people_type(typed: str, cents: int) -> None:
    assert parse_amount(typed) == cents


@pytest.mark.parametrize("typed", ["", "$", "fifty", "50.555", "1,23", "-50", "50$", "1e3", "5 0", "1234567890"])
def test_anything_else_is_refused(typed: str) -> None:
    assert parse_amount(typed) is None
