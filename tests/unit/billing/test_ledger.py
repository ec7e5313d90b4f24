"""Statement figures and aging, pure."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from services.billing import ledger
from services.documents.sources import StatementBody

D0 = dt.date(2026, 1, 1)


def bill(number: int, total: int, issued: int, due: int, payments=(), cancelled: int | None = None) -> ledger.BillFacts:
    day = lambda n: D0 + dt.timedelta(days=n)  # noqa: E731
    return ledger.BillFacts(
        str(number), number, day(issued), day(due), total, day(cancelled) if cancelled is not None else None,
        [(day(d), k, c) for d, k, c in payments],
    )  # fmt: skip


def test_statement_opening_entries_closing_and_aging() -> None:
    bills = [
        bill(1, 10000, 0, 30, [(5, "payment", 4000), (40, "refund", 1000)]),
        bill(2, 5000, 20, 50),
        bill(3, 7000, 1, 31, cancelled=3),
    ]
    body = ledger.statement_body(bills, D0 + dt.timedelta(days=10), D0 + dt.timedelta(days=100))
    assert body["opening_balance_cents"] == 10000 - 4000  # bill 3 charged and reversed before the range
    assert [(e["kind"], e["amount_cents"]) for e in body["entries"]] == [("charge", 5000), ("refund", 1000)]
    assert body["closing_balance_cents"] == 6000 + 5000 + 1000
    # day 100: bill 1 is 70 days past due (7000 owed), bill 2 is 50 days (5000).
    assert body["aging"] == {"current": 0, "days_1_30": 0, "days_31_60": 5000, "days_61_90": 7000, "days_over_90": 0}


def test_aging_buckets_edges() -> None:
    assert [ledger.aging_bucket(d) for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current", "current", "days_1_30", "days_1_30", "days_31_60", "days_31_60", "days_61_90", "days_61_90",
        "days_over_90",
    ]  # fmt: skip


bills_strategy = st.lists(
    st.tuples(
        st.integers(1, 100_000),
        st.integers(0, 60),
        st.integers(0, 90),
        st.lists(st.tuples(st.integers(0, 120), st.integers(1, 20_000)), max_size=3),
    ),
    max_size=6,
)


@given(bills_strategy, st.integers(0, 60), st.integers(0, 90))
def test_closing_is_opening_plus_entries_and_equals_aging_when_nothing_is_overpaid(raw, start, length) -> None:
    bills = []
    for i, (total, issued, due_in, pays) in enumerate(raw):
        left, facts = total, []
        for day, cents in sorted(pays):
            cents = min(cents, left)
            if cents:
                facts.append((max(day, issued), "payment", cents))
                left -= cents
        bills.append(bill(i + 1, total, issued, issued + due_in, facts))
    s, e = D0 + dt.timedelta(days=start), D0 + dt.timedelta(days=start + length)
    body = ledger.statement_body(bills, s, e)
    assert body["closing_balance_cents"] == body["opening_balance_cents"] + sum(
        x["amount_cents"] for x in body["entries"]
    )
    assert body["closing_balance_cents"] == sum(body["aging"].values())
    assert (
        body["charges_cents"] - body["payments_cents"] == body["closing_balance_cents"] - body["opening_balance_cents"]
    )
    StatementBody.model_validate(body)  # what documents accepts and renders


def test_adjustments_on_statements_aging_and_a_cancelled_adjusted_bill_nets_zero() -> None:
    day = lambda n: D0 + dt.timedelta(days=n)  # noqa: E731
    adjusted = ledger.BillFacts(
        "1", 1, day(0), day(30), 10000, None, [(day(2), "payment", 1000)],
        [ledger.AdjustmentFact(day(3), "write_off", 4000), ledger.AdjustmentFact(day(4), "discount", 500, day(6))],
    )  # fmt: skip
    cancelled = ledger.BillFacts(
        "2", 2, day(0), day(30), 3000, day(8), [], [ledger.AdjustmentFact(day(1), "bad_debt", 3000)]
    )
    body = ledger.statement_body([adjusted, cancelled], day(0), day(10))
    assert [(e["kind"], e["amount_cents"], e["description"]) for e in body["entries"] if e["bill_number"] == 1] == [
        ("charge", 10000, "Bill #1"), ("payment", -1000, "Payment on bill #1"),
        ("adjustment", -4000, "Write-off on bill #1"), ("adjustment", -500, "Discount on bill #1"),
        ("adjustment_reversed", 500, "Discount on bill #1 reversed"),
    ]  # fmt: skip
    assert [e["amount_cents"] for e in body["entries"] if e["bill_number"] == 2] == [3000, -3000, 0]
    assert body["closing_balance_cents"] == 5000 and body["adjustments_cents"] == 4000 + 3000
    assert sum(body["aging"].values()) == 5000
    assert sum(ledger.aging([adjusted], day(5)).values()) == 10000 - 1000 - 4000 - 500
    StatementBody.model_validate(body)
