"""The money rules of payments, pure: splitting a payment, taking a refund back, reconciling
a platform payout. Property tests hold the invariants for any amounts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import (
    Application,
    BillBalance,
    PaymentRuleError,
    expected_payer_amount,
    plan_credit_use,
    plan_payment,
    plan_refund,
    reconcile_session,
)

cents = st.integers(min_value=1, max_value=10_000_000)


def bill(bill_id: str, owed: int, applied: int = 0, status: str = "open") -> BillBalance:
    return BillBalance(bill_id, status, owed, applied)


def test_partial_payment_applies_what_was_paid() -> None:
    plan = plan_payment(4000, [Application("b", 4000)], {"b": bill("b", 10000)}, method="cash")
    assert plan.applications == (Application("b", 4000),) and plan.credit_cents == 0


def test_overpayment_applies_the_open_balance_and_credits_the_rest() -> None:
    plan = plan_payment(12000, [Application("b", 12000)], {"b": bill("b", 10000, applied=3000)}, method="cash")
    assert plan.applications == (Application("b", 7000),) and plan.credit_cents == 5000


def test_prepayment_is_all_credit() -> None:
    assert plan_payment(5000, [], {}, method="card").credit_cents == 5000


@pytest.mark.parametrize(
    ("balances", "code", "status"),
    [
        ({"b": bill("b", 100, status="cancelled")}, "bill_cancelled", 409),
        ({"b": bill("b", 100, applied=100)}, "bill_fully_paid", 409),
    ],
)
def test_bills_that_cannot_take_money(balances, code, status) -> None:
    with pytest.raises(PaymentRuleError) as exc:
        plan_payment(100, [Application("b", 100)], balances, method="cash")
    assert (exc.value.code, exc.value.status) == (code, status)


def test_credit_payment_never_exceeds_available_credit_nor_the_balance() -> None:
    balances = {"b": bill("b", 10000)}
    with pytest.raises(PaymentRuleError) as exc:
        plan_payment(6000, [Application("b", 6000)], balances, method="credit", available_credit_cents=5000)
    assert exc.value.code == "insufficient_credit" and exc.value.status == 422
    with pytest.raises(PaymentRuleError) as exc:
        plan_payment(12000, [Application("b", 12000)], balances, method="credit", available_credit_cents=20000)
    assert exc.value.code == "exceeds_balance"
    ok = plan_payment(5000, [Application("b", 5000)], balances, method="credit", available_credit_cents=5000)
    assert ok.applied_cents == 5000


def test_allocations_may_not_exceed_the_amount_nor_repeat_a_bill() -> None:
    balances = {"a": bill("a", 100), "b": bill("b", 100)}
    with pytest.raises(PaymentRuleError, match="more than"):
        plan_payment(150, [Application("a", 100), Application("b", 100)], balances, method="check")
    with pytest.raises(PaymentRuleError, match="twice"):
        plan_payment(200, [Application("a", 50), Application("a", 50)], balances, method="check")


@given(
    amount=cents,
    owed=st.lists(st.tuples(cents, st.integers(min_value=0, max_value=10_000_000)), min_size=1, max_size=5),
    data=st.data(),
)
def test_a_payment_is_conserved_and_never_over_applies(amount, owed, data) -> None:
    balances = {f"b{i}": bill(f"b{i}", o, min(a, o - 1)) for i, (o, a) in enumerate(owed)}
    asks = []
    left = amount
    for bill_id in balances:
        ask = data.draw(st.integers(min_value=0, max_value=left))
        if ask:
            asks.append(Application(bill_id, ask))
            left -= ask
    plan = plan_payment(amount, asks, balances, method="cash")
    assert plan.applied_cents + plan.credit_cents == amount
    assert plan.credit_cents >= 0
    for a in plan.applications:
        assert 0 < a.amount_cents <= balances[a.bill_id].open_cents


def test_refund_takes_unused_credit_first_then_the_latest_bill() -> None:
    amount, plan = plan_refund(
        9000,
        paid_cents=15000,
        refunded_cents=0,
        credit_refundable_cents=2000,
        applied=[Application("a", 6000), Application("b", 7000)],
    )
    assert amount == 9000
    assert plan.credit_cents == 2000 and plan.applications == (Application("b", 7000),)


def test_full_refund_and_nothing_more() -> None:
    amount, plan = plan_refund(None, paid_cents=5000, refunded_cents=1000, credit_refundable_cents=0,
                               applied=[Application("a", 4000)])  # fmt: skip
    assert amount == 4000 and plan.applications == (Application("a", 4000),)
    with pytest.raises(PaymentRuleError) as exc:
        plan_refund(1, paid_cents=5000, refunded_cents=5000, credit_refundable_cents=0, applied=[])
    assert exc.value.code == "refund_exceeds_payment" and exc.value.status == 422
    with pytest.raises(PaymentRuleError) as exc:
        plan_refund(None, paid_cents=5000, refunded_cents=5000, credit_refundable_cents=0, applied=[])
    assert exc.value.code == "already_refunded" and exc.value.status == 409


def test_refund_of_one_allocation() -> None:
    applied = [Application("a", 6000), Application("b", 7000)]
    _, plan = plan_refund(6000, paid_cents=13000, refunded_cents=0, credit_refundable_cents=0, applied=applied,
                          bill_id="a")  # fmt: skip
    assert plan.applications == (Application("a", 6000),)
    with pytest.raises(PaymentRuleError, match="only 7000"):
        plan_refund(8000, paid_cents=13000, refunded_cents=0, credit_refundable_cents=0, applied=applied, bill_id="b")


def test_refund_blocked_when_the_credit_it_became_was_spent() -> None:
    with pytest.raises(PaymentRuleError) as exc:
        plan_refund(5000, paid_cents=5000, refunded_cents=0, credit_refundable_cents=1000, applied=[])
    assert exc.value.code == "credit_already_used" and exc.value.status == 409


@given(
    paid=cents,
    data=st.data(),
)
def test_refunds_in_sequence_never_exceed_the_payment(paid, data) -> None:
    applied_total = data.draw(st.integers(min_value=0, max_value=paid))
    applied = [Application("a", applied_total)] if applied_total else []
    credit = paid - applied_total
    refunded = 0
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        ask = data.draw(st.one_of(st.none(), st.integers(min_value=1, max_value=paid + 10)))
        try:
            amount, plan = plan_refund(ask, paid_cents=paid, refunded_cents=refunded, credit_refundable_cents=credit,
                                       applied=applied)  # fmt: skip
        except PaymentRuleError:
            continue
        assert plan.credit_cents + sum(a.amount_cents for a in plan.applications) == amount
        credit -= plan.credit_cents
        taken = sum(a.amount_cents for a in plan.applications)
        applied = [Application("a", applied[0].amount_cents - taken)] if applied else []
        refunded += amount
        assert refunded <= paid and credit >= 0 and all(a.amount_cents >= 0 for a in applied)


def test_credit_use_pays_bills_in_order_until_it_runs_out() -> None:
    plan = plan_credit_use(5000, [bill("a", 3000), bill("x", 100, status="cancelled"), bill("b", 4000)])
    assert plan.applications == (Application("a", 3000), Application("b", 2000))


@pytest.mark.parametrize(
    ("expected", "received", "flag", "difference"),
    [
        (12000, [("r1", 12000)], "ok", 0),
        (12000, [("r1", 10000)], "underpaid", -2000),
        (12000, [], "missing", -12000),
        (12000, [("r1", 12000), ("r2", 12000)], "duplicate", 12000),
        (None, [("r1", 5000)], "unexpected", 5000),
    ],
)
def test_reconcile_a_platform_session(expected, received, flag, difference) -> None:
    row = reconcile_session("s", expected, received)
    assert row.flag == flag and row.difference_cents == difference


def test_expected_amount_uses_the_payers_rate_or_the_session_fee() -> None:
    schedule = {"headway": {"90837": 12000}}
    assert expected_payer_amount("headway", [("90837", 14500), ("90785", 2000)], schedule) == 14000
    assert expected_payer_amount("alma", [("90837", 14500)], schedule) == 14500
