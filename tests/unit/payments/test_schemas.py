"""Request rules that need no database: strict int cents, consistent payment bodies."""

import pytest
from pydantic import ValidationError

from services.payments.schemas import CardIn, PaymentIn, RefundIn
from services.payments.stripe_gateway import intent_result

BASE = {"client_id": "c1", "method": "cash", "amount_cents": 1000}


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_cents": 10.0},
        {"amount_cents": "1000"},
        {"amount_cents": -5},
        {"bill_id": "b1", "allocations": [{"bill_id": "b2", "amount_cents": 5}]},
        {"online": True},
        {"method": "card", "online": True, "paid_at": "2026-11-01T10:00:00Z"},
        {"method": "credit"},
        {"allocations": []},
        {"paid_at": "2026-11-01T10:00:00"},
        {"card_last4": "42a2"},
    ],
)
def test_invalid_payment_bodies(changes) -> None:
    with pytest.raises(ValidationError):
        PaymentIn.model_validate({**BASE, **changes})


def test_valid_payment_bodies() -> None:
    assert PaymentIn.model_validate(BASE).payer == "client"
    split = PaymentIn.model_validate(
        {
            **BASE,
            "method": "check",
            "allocations": [{"bill_id": "a", "amount_cents": 600}, {"bill_id": "b", "amount_cents": 400}],
        }
    )
    assert [a.amount_cents for a in split.allocations or []] == [600, 400]
    assert PaymentIn.model_validate({**BASE, "method": "card", "online": True}).online


def test_refund_amount_is_optional_but_strict() -> None:
    assert RefundIn.model_validate({}).amount_cents is None
    with pytest.raises(ValidationError):
        RefundIn.model_validate({"amount_cents": 1.5})


def test_a_card_never_carries_a_number() -> None:
    card = CardIn.model_validate({"stripe_payment_method_id": "pm_1", "number": "4242424242424242"})
    assert "number" not in card.model_dump()


def test_intent_result_reads_stripe_shaped_objects() -> None:
    declined = intent_result(
        {"id": "pi_1", "status": "requires_payment_method", "latest_charge": {"id": "ch_1"},
         "last_payment_error": {"message": "Your card was declined."}}
    )  # fmt: skip
    assert (declined.charge_id, declined.failure_reason) == ("ch_1", "Your card was declined.")
    ok = intent_result({"id": "pi_2", "status": "succeeded", "latest_charge": "ch_2", "last_payment_error": None})
    assert (ok.status, ok.charge_id, ok.failure_reason) == ("succeeded", "ch_2", None)
