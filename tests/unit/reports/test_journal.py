"""The journal's rules: every entry balances, and the receivables equal the open balances,
whatever sequence of money facts arrives (hypothesis), plus hand-checked single entries."""

from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reports import domain
from services.reports.domain import JournalLine


@dataclass
class Bill:
    client: str
    total: int
    insurance_share: int
    cancelled: bool = False
    paid: int = 0
    adjustments: list[tuple[str, str, int]] = field(default_factory=list)  # (payer, kind, cents)
    booked: dict[str, int] = field(default_factory=dict)

    @property
    def balance(self) -> int:
        return self.total - self.paid - sum(c for _, _, c in self.adjustments)


@dataclass
class Payment:
    client: str
    method: str
    payer: str
    on_bill: dict[int, int]
    credit: int
    refunded: int = 0


class Books:
    """A small world: bills and payments as billing and payments keep them, and the journal
    the reports' rules write for each fact."""

    def __init__(self) -> None:
        self.bills: list[Bill] = []
        self.payments: list[Payment] = []
        self.entries: list[tuple[str, domain.JournalEntry]] = []

    def post(self, client: str, entry: domain.JournalEntry | None) -> None:
        if entry is not None:
            self.entries.append((client, entry))

    def rebook(self, i: int) -> None:
        b = self.bills[i]
        status = "cancelled" if b.cancelled else "open"
        target = domain.bill_target(status, b.total, b.insurance_share, b.adjustments)
        self.post(b.client, domain.bill_entry(str(i), i, b.booked, target, cancelled=b.cancelled))
        b.booked = target

    def create(self, client: str, total: int, insurance_pct: int) -> None:
        self.bills.append(Bill(client, total, total * insurance_pct // 100))
        self.rebook(len(self.bills) - 1)

    def pay(self, i: int, method: str, payer: str, cents: int, extra_credit: int) -> None:
        """A payment on a bill billing has cancelled meanwhile reaches it anyway (payments did
        not know yet); billing answers AllocationRejected and the amount becomes credit."""
        b = self.bills[i]
        applied = cents if b.cancelled else min(cents, b.balance)
        credit = cents - applied + extra_credit
        pid = str(len(self.payments))
        self.post(b.client, domain.payment_entry(pid, method, payer, cents + extra_credit, applied, credit))
        if b.cancelled:
            self.post(b.client, domain.rejected_entry(pid, str(i), payer, applied))
            applied = 0
        b.paid += applied
        self.payments.append(Payment(b.client, method, payer, {i: applied} if applied else {}, credit))
        if applied:
            self.rebook(i)

    def refund(self, j: int, pct: int) -> None:
        p = self.payments[j]
        (i, on_bill), *_ = list(p.on_bill.items()) or [(None, 0)]
        back = on_bill * pct // 100
        if i is None or back == 0:
            return
        p.on_bill[i] -= back
        self.bills[i].paid -= back
        self.post(p.client, domain.refund_entry(f"r{j}", p.method, p.payer, back, back, 0))
        self.rebook(i)

    def adjust(self, i: int, payer: str, kind: str, pct: int) -> None:
        b = self.bills[i]
        cents = b.balance * pct // 100
        if not b.cancelled and cents > 0:
            b.adjustments.append((payer, kind, cents))
            self.rebook(i)

    def reverse(self, i: int) -> None:
        b = self.bills[i]
        if not b.cancelled and b.adjustments:
            b.adjustments.pop(0)
            self.rebook(i)

    def cancel(self, i: int) -> None:
        b = self.bills[i]
        if b.paid == 0 and not b.cancelled:  # billing refuses while a payment stands
            b.cancelled = True
            self.rebook(i)

    def open_balances(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for b in self.bills:
            if not b.cancelled:
                out[b.client] += b.balance
        return out

    def receivables(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for client, e in self.entries:
            for line in e.lines:
                if line.account in domain.RECEIVABLES:
                    out[client] += line.debit_cents - line.credit_cents
        return out


clients = st.sampled_from(["c1", "c2", "c3"])
methods = st.sampled_from(["card", "cash", "check", "other", "credit"])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), clients, st.integers(1, 50_000), st.sampled_from([0, 0, 20, 80, 100])),
        st.tuples(st.just("pay"), st.integers(0, 50), methods, st.sampled_from(["client", "insurance"]),
                  st.integers(1, 60_000), st.sampled_from([0, 0, 500])),
        st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 100)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("adjust"), st.integers(0, 50), st.sampled_from(["client", "insurance"]),
                  st.sampled_from(["write_off", "discount", "bad_debt"]), st.integers(1, 100)),
        st.tuples(st.just("reverse"), st.integers(0, 50)),
    ),
    max_size=60,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(ops)
def test_every_entry_balances_and_receivables_equal_open_balances(sequence: list[tuple]) -> None:
    books = Books()
    for op, *args in sequence:
        if op == "create":
            books.create(*args)
        elif op == "pay" and books.bills:
            books.pay(args[0] % len(books.bills), *args[1:])
        elif op == "refund" and books.payments:
            books.refund(args[0] % len(books.payments), args[1])
        elif op == "cancel" and books.bills:
            books.cancel(args[0] % len(books.bills))
        elif op == "adjust" and books.bills:
            books.adjust(args[0] % len(books.bills), *args[1:])
        elif op == "reverse" and books.bills:
            books.reverse(args[0] % len(books.bills))
        for _, e in books.entries:
            assert e.debits == e.credits and e.debits > 0
            assert all((ln.debit_cents > 0) != (ln.credit_cents > 0) for ln in e.lines)
        balances, receivables = books.open_balances(), books.receivables()
        for client in balances.keys() | receivables.keys():
            assert receivables.get(client, 0) == balances.get(client, 0)


def test_an_insurance_bill_charges_both_receivables() -> None:
    target = domain.bill_target("open", 15_000, 12_000, [])
    e = domain.bill_entry("b1", 7, {}, target, cancelled=False)
    assert e is not None and e.memo == "Bill #7"
    assert e.lines == (
        JournalLine("accounts_receivable", 3_000, 0),
        JournalLine("insurance_receivable", 12_000, 0),
        JournalLine("service_revenue", 0, 15_000),
    )


def test_cancelling_reverses_what_was_booked() -> None:
    booked = domain.bill_target("open", 15_000, 12_000, [])
    e = domain.bill_entry("b1", 7, booked, domain.bill_target("cancelled", 15_000, 12_000, []), cancelled=True)
    assert e is not None and e.memo == "Bill #7 cancelled"
    assert e.lines == (
        JournalLine("service_revenue", 15_000, 0),
        JournalLine("accounts_receivable", 0, 3_000),
        JournalLine("insurance_receivable", 0, 12_000),
    )


def test_adjustments_come_off_the_payer_receivable_by_kind() -> None:
    booked = domain.bill_target("open", 15_000, 12_000, [])
    target = domain.bill_target(
        "open", 15_000, 12_000, [("client", "discount", 1_000), ("insurance", "bad_debt", 2_000)]
    )
    e = domain.bill_entry("b1", 7, booked, target, cancelled=False)
    assert e is not None and e.memo == "Bill #7 adjusted"
    assert e.lines == (
        JournalLine("write_offs", 2_000, 0),
        JournalLine("discounts", 1_000, 0),
        JournalLine("accounts_receivable", 0, 1_000),
        JournalLine("insurance_receivable", 0, 2_000),
    )


def test_a_card_overpayment_leaves_credit() -> None:
    e = domain.payment_entry("p1", "card", "client", 20_000, 15_000, 5_000)
    assert e is not None
    assert e.lines == (
        JournalLine("stripe_clearing", 20_000, 0),
        JournalLine("accounts_receivable", 0, 15_000),
        JournalLine("client_credit", 0, 5_000),
    )


def test_a_payment_whose_parts_do_not_add_up_is_refused() -> None:
    with pytest.raises(domain.UnbalancedFact):
        domain.payment_entry("p1", "cash", "client", 10_000, 9_000, 0)


def test_a_refund_of_a_credit_payment_goes_back_to_credit() -> None:
    e = domain.refund_entry("r1", "credit", "client", 4_000, 0, 0)
    assert e is not None
    assert e.lines == (JournalLine("accounts_receivable", 4_000, 0), JournalLine("client_credit", 0, 4_000))


def test_split_adds_up_and_favours_the_earlier_part_on_ties() -> None:
    assert domain.split(100, [1, 1, 1]) == [34, 33, 33]
    assert domain.split(-100, [1, 1, 1]) == [-34, -33, -33]
    assert domain.split(10_000, [15_000, 5_000]) == [7_500, 2_500]
    assert domain.split(7, [0, 0]) == [7, 0]


def test_line_figures_keep_billed_equal_to_collected_adjusted_outstanding() -> None:
    figures = domain.line_figures([15_000, 5_000], paid_cents=10_001, balance_cents=9_999)
    assert [(f.billed_cents, f.collected_cents, f.adjusted_cents, f.outstanding_cents) for f in figures] == [
        (15_000, 7_501, 0, 7_499),
        (5_000, 2_500, 0, 2_500),
    ]


def test_decimal_places_of_the_practice_currency() -> None:
    assert [domain.minor_digits(c) for c in ("USD", "EUR", "JPY", "krw")] == [2, 2, 0, 0]


def test_open_balance_takes_each_payers_moves_off_its_own_share_first() -> None:
    # A 200.00 bill, 170.00 of it the insurer's: the client's 30.00 copay leaves the insurer owing all its share.
    assert domain.open_balance(20_000, 17_000, [("payment", "client", 3_000)]) == domain.OpenBalance(
        3_000, 0, 17_000, 17_000
    )
    # The insurer pays 150.00, refunds 20.00 of it; a 10.00 client write-off: 60.00 open, 40.00 of it the insurer's.
    moves = [("payment", "insurance", 15_000), ("refund", "insurance", 2_000), ("adjustment", "client", 1_000)]
    assert domain.open_balance(20_000, 17_000, moves) == domain.OpenBalance(1_000, 13_000, 6_000, 4_000)
    # A reversed write-off owes again; an overpaid bill is open for nothing.
    moves = [("adjustment", "client", 5_000), ("adjustment_reversed", "client", 5_000)]
    assert domain.open_balance(5_000, 0, moves) == domain.OpenBalance(0, 0, 5_000, 0)
    assert domain.open_balance(5_000, 5_000, [("payment", "client", 6_000)]) == domain.OpenBalance(6_000, 0, -1_000, 0)
