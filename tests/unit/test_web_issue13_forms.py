"""The console's forms of issue 13's features, read in memory: New Good Faith Estimate, Add
Adjustment; and the portal's next installment of a plan and the payments report's row names."""

import pytest
from starlette.datastructures import FormData

from services.web.portal.plans import next_installment
from services.web.staff.bills import adjustment_body
from services.web.staff.estimates import estimate_body
from services.web.staff.forms import FormError
from services.web.staff.reports import payment_key

ESTIMATE = [("client_id", "c1"), ("clinician_id", "dr1"), ("period_start", "2027-01-01"),
            ("period_end", "2027-12-31"), ("item-0-code", "90837"), ("item-0-description", "Psychotherapy"),
            ("item-0-fee", "$160.00"), ("item-0-quantity", "12"), ("item-1-code", ""), ("item-2-code", "90791"),
            ("item-2-fee", "200"), ("diagnosis_codes", "F41.1, F32.0"), ("comments", "")]  # fmt: skip


def test_the_estimate_form_becomes_billings_body() -> None:
    assert estimate_body(FormData(ESTIMATE)) == {
        "client_id": "c1",
        "clinician_id": "dr1",
        "period_start": "2027-01-01",
        "period_end": "2027-12-31",
        "items": [
            {"code": "90837", "description": "Psychotherapy", "fee_cents": 16000, "quantity": 12},
            {"code": "90791", "description": None, "fee_cents": 20000, "quantity": 1},
        ],
        "diagnosis_codes": ["F41.1", "F32.0"],
        "renew_yearly": False,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_id": ""}, "Choose a client."),
        ({"clinician_id": ""}, "Choose the clinician."),
        ({"item-0-quantity": "0"}, "Quantity of 90837"),
        ({"item-0-fee": "abc"}, "Fee of 90837"),
        ({"item-0-code": "", "item-2-code": ""}, "at least one expected service"),
    ],
)
def test_what_the_estimate_form_refuses(change: dict[str, str], message: str) -> None:
    pairs = [(k, change.get(k, v)) for k, v in ESTIMATE]
    with pytest.raises(FormError, match=message):
        estimate_body(FormData(pairs))


def test_the_adjustment_dialog_becomes_billings_body() -> None:
    form = FormData([("kind", "write_off"), ("amount", "40.50"), ("reason", "Hardship")])
    assert adjustment_body(form) == {"kind": "write_off", "amount_cents": 4050, "reason": "Hardship", "payer": "client"}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("kind", "refund"), ("amount", "1"), ("reason", "x")], "Choose the kind"),
        ([("kind", "discount"), ("amount", "0"), ("reason", "x")], "more than zero"),
        ([("kind", "bad_debt"), ("amount", "5")], "Give the reason"),
    ],
)
def test_what_the_adjustment_dialog_refuses(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(FormError, match=message):
        adjustment_body(FormData(pairs))


def test_the_next_installment_is_the_first_still_scheduled_of_an_active_plan() -> None:
    schedule = [{"due_date": "2027-01-04", "status": "paid"}, {"due_date": "2027-02-04", "status": "failed"},
                {"due_date": "2027-03-04", "status": "scheduled"}]  # fmt: skip
    assert next_installment({"status": "active", "schedule": schedule}) == schedule[2]
    assert next_installment({"status": "completed", "schedule": schedule}) is None


def test_payments_report_rows_read_in_words() -> None:
    assert payment_key("method", {"key": "cash"}) == "Cash"
    assert payment_key("day", {"key": "2026-11-02"}) == "Nov 2, 2026"
    assert payment_key("clinician", {"key": "dr1", "label": "Dana Reyes"}) == "Dana Reyes"
    assert payment_key("clinician", {"key": None, "label": None}) == "Client credit (no session)"
