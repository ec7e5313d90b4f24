"""Money rules: int cents only, one half-even rounding point."""

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.money import format_money, percent_of


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [(1000, 20, 200), (125, 10, 12), (135, 10, 14), (1, 50, 0), (3, 50, 2), (16000, "12.5", 2000), (0, 30, 0)],
)
def test_percent_rounds_half_even(amount: int, percent, expected: int) -> None:
    assert percent_of(amount, percent) == expected


def test_floats_are_refused_as_money() -> None:
    with pytest.raises(TypeError):
        percent_of(10.5, 10)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**9), st.decimals(min_value=0, max_value=100, places=2))
@example(5, Decimal(50))
@example(350, Decimal(1))
def test_a_percentage_is_the_nearest_cent_ties_to_even(amount: int, percent: Decimal) -> None:
    part = percent_of(amount, percent)
    exact = Decimal(amount) * percent / 100
    assert 0 <= part <= amount
    assert abs(part - exact) <= Decimal("0.5")
    if abs(part - exact) == Decimal("0.5"):
        assert part % 2 == 0, "a tie goes to the even cent"


@pytest.mark.parametrize(
    ("cents", "text"), [(0, "$0.00"), (16000, "$160.00"), (123456789, "$1,234,567.89"), (-505, "-$5.05")]
)
def test_format_money(cents: int, text: str) -> None:
    assert format_money(cents) == text


def test_format_other_currency() -> None:
    assert format_money(1999, "CAD") == "CAD 19.99"
