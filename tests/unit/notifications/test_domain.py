"""The pure rules: who gets the email, what it says, backoff, failure classes, balances."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from services.notifications import domain
from shared.events import Allocation, ClientUpserted, PaymentRefunded, RefundInfo
from tests.conftest import example_event
from tests.unit.notifications import samples


def client(name: str):
    return ClientUpserted.model_validate(example_event(name)["data"]).client


def test_a_minors_email_goes_to_the_billing_contact_guardian() -> None:
    assert domain.contact_for(client("ClientUpserted-minor")) == domain.Contact("Grace Park", "grace.park@example.com")


def test_an_adults_email_goes_to_the_client() -> None:
    adult = client("ClientUpserted-adult")
    contact = domain.contact_for(adult)
    assert contact.email == adult.email
    assert contact.name == f"{adult.first_name} {adult.last_name}"


def test_a_minor_whose_billing_contact_has_no_email_is_portal_only() -> None:
    minor = client("ClientUpserted-minor")
    guardians = [g.model_copy(update={"email": None}) if g.is_billing_contact else g for g in minor.guardians]
    contact = domain.contact_for(minor.model_copy(update={"guardians": guardians}))
    assert contact == domain.Contact("Grace Park", None)
    assert domain.channel_for(contact.email) == "portal"


def test_channel() -> None:
    assert domain.channel_for("a@example.com") == "email"
    assert domain.channel_for("a@example.com", email_wanted=False) == "portal"
    assert domain.channel_for(None) == "portal"


def test_delivery_ids_are_deterministic_per_cause_and_kind() -> None:
    assert domain.delivery_id("e1", "bill_shared") == domain.delivery_id("e1", "bill_shared")
    assert domain.delivery_id("e1", "bill_shared") != domain.delivery_id("e2", "bill_shared")
    assert domain.delivery_id("e1", "bill_shared") != domain.delivery_id("e1", "payment_receipt")
    assert domain.notification_id("d1") == domain.notification_id("d1") != domain.notification_id("d2")


def test_addresses() -> None:
    assert domain.is_deliverable_address("grace.park@example.com")
    for bad in (None, "", "grace", "grace@", "@example.com", "a b@example.com", "a@b", "x@y.com, z@w.com"):
        assert not domain.is_deliverable_address(bad), bad


def test_smtp_reply_classes() -> None:
    assert domain.classify_smtp_code(421) == "transient"
    assert domain.classify_smtp_code(451) == "transient"
    assert domain.classify_smtp_code(550) == "permanent"
    assert domain.after_failure(1, 5, "transient") == "retry"
    assert domain.after_failure(5, 5, "transient") == "failed"
    assert domain.after_failure(1, 5, "permanent") == "failed"


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=10_000))
def test_backoff_grows_and_is_capped(attempts: int, base_ms: int) -> None:
    base, cap = dt.timedelta(milliseconds=base_ms), dt.timedelta(minutes=15)
    delay = domain.retry_delay(attempts, base, cap)
    assert min(base, cap) <= delay <= cap
    assert domain.retry_delay(attempts + 1, base, cap) >= delay


def test_bill_email_says_what_amount_due_and_how_to_pay() -> None:
    bill = samples.bill("c1", version=3)
    draft = domain.bill_shared(bill, samples.share())
    assert draft.subject == "Your bill #1042 from Rivers Edge Counseling"
    assert draft.summary == (
        "A bill for $160.00 is due on 2026-12-02. Pay online with bill number 1042 and access code 483920."
    )
    assert draft.action_url == bill.pay_url
    assert draft.document == domain.DocumentNeed("bill", bill.id, 3, "bill-1042.pdf")
    assert draft.attach_pdf


def test_bill_email_amount_is_the_open_balance() -> None:
    bill = samples.paid(samples.bill("c1", balance=20000), "p1", 5000)
    draft = domain.bill_shared(bill, samples.share(action_url="https://pay.example/b"))
    assert draft.context["amount"] == "$150.00"
    assert draft.action_url == "https://pay.example/b"


def test_statement_and_superbill_drafts() -> None:
    statement = domain.document_shared(samples.statement("c1"), samples.share(attach_pdf=False))
    assert statement.kind == "statement_shared"
    assert "2026-11-01 to 2026-11-30" in statement.summary and "Balance due: $45.00" in statement.summary
    assert not statement.attach_pdf
    superbill = domain.document_shared(
        samples.statement("c1", kind="superbill", body={"total_fee_cents": 32000}), samples.share()
    )
    assert superbill.kind == "superbill_shared"
    assert superbill.subject == "Your superbill #7 from Rivers Edge Counseling"
    assert "Total: $320.00" in superbill.summary


def test_receipt_shows_card_brand_and_last4_only() -> None:
    payment = samples.card_payment("c1", amount=5000)
    draft = domain.payment_receipt(payment, "Rivers Edge Counseling", "USD", "Grace Park", 15000)
    assert draft.context["method"] == "Visa ending in 4242"
    assert "Remaining balance: $150.00" in draft.summary
    cash = domain.payment_receipt(samples.card_payment("c1", method="cash"), "", "USD", "G", None)
    assert cash.context["method"] == "Cash" and "Remaining" not in cash.summary
    assert cash.subject.endswith("to your therapy practice")


def test_refund_and_failed_payment_drafts() -> None:
    payment = samples.card_payment("c1", amount=16000)
    refund = RefundInfo(
        id="r1", payment_id=payment.id, client_id="c1", amount_cents=6000, reason=None, refunded_at=samples.NOW
    )
    PaymentRefunded(refund=refund, payment=payment)
    draft = domain.refund_issued(refund, payment, "Rivers Edge Counseling", "USD", "Grace Park")
    assert draft.kind == "refund_issued"
    assert draft.subject == "Refund of $60.00 from Rivers Edge Counseling"
    failed = domain.payment_failed(payment, "card declined", "Rivers Edge Counseling", "USD", "Grace", False)
    assert failed.kind == "payment_failed" and "card declined" in failed.summary
    autopay = domain.payment_failed(payment, "expired card", "Rivers Edge Counseling", "USD", "Grace", True)
    assert autopay.kind == "autopay_failed" and autopay.subject.startswith("Your automatic payment")


def test_remaining_balance_whichever_event_arrived_first() -> None:
    allocations = [Allocation(bill_id="b1", amount_cents=5000)]
    before = {"b1": domain.KnownBill(20000, frozenset())}
    after = {"b1": domain.KnownBill(15000, frozenset({"p1"}))}
    assert domain.remaining_after("p1", allocations, before) == 15000
    assert domain.remaining_after("p1", allocations, after) == 15000
    assert domain.remaining_after("p1", allocations, {}) is None
    assert domain.remaining_after("p1", [], after) is None


def test_remaining_balance_of_two_quick_payments_comes_from_the_payment_events() -> None:
    """Both receipts were written against the same (stale) snapshot: the balance each payment
    left, computed by payments under the bill lock, wins."""
    stale = {"b1": domain.KnownBill(15000, frozenset())}
    first = [Allocation(bill_id="b1", amount_cents=5000, balance_after_cents=10000)]
    second = [Allocation(bill_id="b1", amount_cents=5000, balance_after_cents=5000)]
    assert domain.remaining_after("p1", first, stale) == 10000
    assert domain.remaining_after("p2", second, stale) == 5000


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=10**7), st.integers(min_value=0, max_value=10**7), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_remaining_balance_is_exact_int_cents(bills: list[tuple[int, int, bool]]) -> None:
    """Paid amount + remaining = the balances before the payment, in int cents, never negative."""
    allocations, known, before_total = [], {}, 0
    for i, (amount, extra, applied) in enumerate(bills):
        before = amount + extra
        before_total += before
        allocations.append(Allocation(bill_id=f"b{i}", amount_cents=amount))
        known[f"b{i}"] = domain.KnownBill(before - amount if applied else before, frozenset({"p"} if applied else ()))
    remaining = domain.remaining_after("p", allocations, known)
    assert isinstance(remaining, int)
    assert remaining + sum(a.amount_cents for a in allocations) == before_total


def test_card_expiry_dates() -> None:
    assert domain.card_expires_on(2026, 12) == dt.date(2026, 12, 31)
    assert domain.card_expires_on(2028, 2) == dt.date(2028, 2, 29)
    today = dt.date(2026, 11, 28)
    assert domain.card_expiring_soon(2026, 12, today, 30) is False  # Dec 31 is 33 days away
    assert domain.card_expiring_soon(2026, 11, today, 30) is True
    assert domain.card_expiring_soon(2026, 10, today, 30) is False  # already expired
    assert domain.card_expiring_soon(2026, 12, dt.date(2026, 12, 1), 30) is True
    assert domain.card_expiring_cause("card_1", 2026, 3) == "card-expiring:card_1:2026-03"


@given(st.integers(min_value=2000, max_value=2100), st.integers(min_value=1, max_value=12))
def test_a_card_expires_on_the_last_day_of_its_month(year: int, month: int) -> None:
    last = domain.card_expires_on(year, month)
    assert (last.year, last.month) == (year, month)
    assert (last + dt.timedelta(days=1)).day == 1


def test_card_expiring_draft() -> None:
    draft = domain.card_expiring("visa", "4242", 2026, 12, "Rivers Edge Counseling", "Grace Park")
    assert draft.kind == "card_expiring"
    assert "Visa ending in 4242" in draft.summary and "12/2026" in draft.summary


def test_subject_is_one_line_whatever_the_practice_name() -> None:
    bill = samples.bill("c1", practice=samples.PRACTICE_INFO.model_copy(update={"name": "Evil\r\nBcc: x@y.z"}))
    draft = domain.bill_shared(bill, samples.share())
    assert draft.subject == "Your bill #1042 from Evil Bcc: x@y.z"
