"""The Start Payment Plan form, read in memory."""

import pytest
from starlette.datastructures import FormData

from services.web.staff.forms import FormError
from services.web.staff.plans import plan_body


def test_the_plan_form_becomes_payments_body() -> None:
    form = FormData([("bill_id", "b1"), ("bill_id", "b2"), ("installments", "4"), ("frequency", "weekly"),
                     ("start_date", "2027-01-04"), ("card_id", "card1")])  # fmt: skip
    assert plan_body(form) == {"bill_ids": ["b1", "b2"], "installments": 4, "frequency": "weekly",
                               "start_date": "2027-01-04", "card_id": "card1"}  # fmt: skip


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("installments", "3"), ("start_date", "2027-01-04"), ("card_id", "c")], "Choose at least one open bill."),
        ([("bill_id", "b1"), ("installments", "0"), ("start_date", "2027-01-04"), ("card_id", "c")], "whole number"),
        ([("bill_id", "b1"), ("installments", "2.5"), ("start_date", "2027-01-04"), ("card_id", "c")], "whole number"),
        ([("bill_id", "b1"), ("installments", "3"), ("card_id", "c")], "first payment date"),
        ([("bill_id", "b1"), ("installments", "3"), ("start_date", "2027-01-04")], "authorized card"),
    ],
)
def test_what_the_form_refuses(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(FormError, match=message):
        plan_body(FormData(pairs))
