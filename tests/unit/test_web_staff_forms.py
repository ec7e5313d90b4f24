"""The staff console's form readers and its "billing has not caught up yet" rule, in memory."""

import pytest
from starlette.datastructures import FormData

from services.web.staff.bills import bill_body, settling
from services.web.staff.forms import FormError
from services.web.staff.payments import payment_body

BILL = {"id": "b1", "client_id": "c1"}
SESSIONS = [{"session_id": "s1", "services": [{"code": "90837", "description": "Psychotherapy", "fee_cents": 16000}]}]


def form(*pairs: tuple[str, str]) -> FormData:
    return FormData(list(pairs))


def test_cash_check_and_card_payments() -> None:
    cash = payment_body(
        form(("type", "cash"), ("amount", "150"), ("paid_at", "2026-11-02T09:30")), BILL, "America/Los_Angeles"
    )
    assert cash["method"] == "cash" and cash["amount_cents"] == 15000
    assert cash["paid_at"] == "2026-11-02T09:30:00-08:00"
    check = payment_body(form(("type", "cash"), ("amount", "1.5"), ("check_number", "1042")), BILL, "UTC")
    assert (check["method"], check["reference"]) == ("check", "1042")
    online = payment_body(
        form(
            ("type", "card"), ("amount", "20"), ("online", "yes"), ("card_id", "card1"), ("paid_at", "2026-11-02T09:30")
        ),
        BILL,
        "UTC",
    )
    assert online["online"] is True and "paid_at" not in online  # Stripe sets the time of an online payment


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((("amount", "5"),), "Choose a payment type."),
        ((("type", "cash"), ("amount", "0")), "The amount must be more than zero."),
        ((("type", "cash"), ("amount", "ten")), "Amount: “ten” is not an amount"),
        (
            (("type", "card"), ("amount", "5"), ("online", "yes")),
            "Choose a card on file (or add one) to charge it online.",
        ),
    ],
)
def test_payment_form_errors_in_words(pairs: tuple[tuple[str, str], ...], message: str) -> None:
    with pytest.raises(FormError, match=message.replace("(", r"\(").replace(")", r"\)")):
        payment_body(form(*pairs), BILL, "UTC")


def test_bill_body_edits_price_and_keeps_insurance_split_rules() -> None:
    body = bill_body(
        form(("client_id", "c1"), ("session", "s1"), ("line-s1-0-price", "150.00"), ("comments", "sliding scale")),
        SESSIONS,
    )
    assert body["lines"] == [
        {"session_id": "s1", "code": "90837", "description": "Psychotherapy", "amount_cents": 15000}
    ]
    assert body["responsibility"] == "client" and "copay_cents" not in body
    insurance = form(
        ("client_id", "c1"),
        ("session", "s1"),
        ("line-s1-0-price", "160"),
        ("responsibility", "insurance"),
        ("copay", "30"),
    )
    assert bill_body(insurance, SESSIONS)["copay_cents"] == 3000
    both = form(*insurance.multi_items(), ("coinsurance", "20"))
    with pytest.raises(FormError, match="not both"):
        bill_body(both, SESSIONS)
    with pytest.raises(FormError, match="at least one session"):
        bill_body(form(("client_id", "c1")), SESSIONS)


def payment(pid: str, refunds: int = 0) -> dict[str, object]:
    return {
        "id": pid,
        "status": "succeeded",
        "allocations": [{"bill_id": "b1", "amount_cents": 100}],
        "refunds": [{"status": "succeeded"}] * refunds,
    }


def test_settling_until_billing_has_every_payment_and_refund() -> None:
    bill = {"id": "b1", "payments": []}
    assert settling(bill, [payment("p1")])
    bill["payments"] = [{"payment_id": "p1", "kind": "payment"}]
    assert not settling(bill, [payment("p1")])
    assert settling(bill, [payment("p1", refunds=1)])
    bill["payments"].append({"payment_id": "p1", "kind": "refund"})
    assert not settling(bill, [payment("p1", refunds=1)])
