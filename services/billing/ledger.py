"""A client's account over time, pure: the statement (opening balance, every charge, payment,
refund and cancellation in a date range, closing balance) and the aging of what is still owed.

A bill's total is charged on its issue date and reversed on the day it is cancelled; payments
and refunds by any payer count on the day they happened (in the practice's timezone)."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

EntryKind = Literal["charge", "payment", "refund", "adjustment", "adjustment_reversed", "cancellation"]

DESCRIPTIONS = {
    "charge": "Bill #{number}",
    "payment": "Payment on bill #{number}",
    "refund": "Refund on bill #{number}",
    "adjustment": "{label} on bill #{number}",
    "adjustment_reversed": "{label} on bill #{number} reversed",
    "cancellation": "Bill #{number} cancelled",
}
ADJUSTMENT_LABELS = {"write_off": "Write-off", "discount": "Discount", "bad_debt": "Bad debt"}


@dataclass(frozen=True)
class AdjustmentFact:
    """An adjustment of a bill: taken off on `day`, owed again from `reversed_on` if reversed."""

    day: dt.date
    kind: str
    amount_cents: int
    reversed_on: dt.date | None = None


AGING_BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")


@dataclass(frozen=True)
class BillFacts:
    bill_id: str
    number: int
    issued_on: dt.date
    due_date: dt.date
    total_cents: int
    cancelled_on: dt.date | None
    payments: Sequence[tuple[dt.date, EntryKind, int]]  # (day, "payment"|"refund", cents > 0)
    adjustments: Sequence[AdjustmentFact] = ()

    def adjusted_on(self, day: dt.date) -> int:
        """What standing adjustments take off at the end of `day`."""
        return sum(
            a.amount_cents for a in self.adjustments if a.day <= day and (a.reversed_on is None or a.reversed_on > day)
        )


@dataclass(frozen=True)
class Entry:
    day: dt.date
    kind: EntryKind
    bill_number: int
    amount_cents: int  # signed: what it does to the balance
    label: str = ""


def entries(bills: Sequence[BillFacts]) -> list[Entry]:
    """Every entry of the bills; a cancellation takes off what the bill still charged (its
    total less the adjustments standing when it was cancelled), so a cancelled bill nets 0."""
    out: list[Entry] = []
    for bill in bills:
        out.append(Entry(bill.issued_on, "charge", bill.number, bill.total_cents))
        if bill.cancelled_on is not None:
            standing = sum(a.amount_cents for a in bill.adjustments if a.reversed_on is None)
            out.append(Entry(bill.cancelled_on, "cancellation", bill.number, -(bill.total_cents - standing)))
        for day, kind, cents in bill.payments:
            out.append(Entry(day, kind, bill.number, -cents if kind == "payment" else cents))
        for a in bill.adjustments:
            label = ADJUSTMENT_LABELS.get(a.kind, "Adjustment")
            out.append(Entry(a.day, "adjustment", bill.number, -a.amount_cents, label))
            if a.reversed_on is not None:
                out.append(Entry(a.reversed_on, "adjustment_reversed", bill.number, a.amount_cents, label))
    order = {"charge": 0, "payment": 1, "refund": 2, "adjustment": 3, "adjustment_reversed": 4, "cancellation": 5}
    return sorted(out, key=lambda e: (e.day, e.bill_number, order[e.kind]))


def aging_bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days_1_30"
    if days_past_due <= 60:
        return "days_31_60"
    if days_past_due <= 90:
        return "days_61_90"
    return "days_over_90"


def aging(bills: Sequence[BillFacts], as_of: dt.date) -> dict[str, int]:
    """What each bill still owes at the end of `as_of`, by how long it is past due."""
    buckets = dict.fromkeys(AGING_BUCKETS, 0)
    for bill in bills:
        if bill.issued_on > as_of or (bill.cancelled_on is not None and bill.cancelled_on <= as_of):
            continue
        paid = sum(c if k == "payment" else -c for day, k, c in bill.payments if day <= as_of)
        owed = bill.total_cents - paid - bill.adjusted_on(as_of)
        if owed > 0:
            buckets[aging_bucket((as_of - bill.due_date).days)] += owed
    return buckets


def statement_body(bills: Sequence[BillFacts], start: dt.date, end: dt.date) -> dict[str, Any]:
    """The statement's figures: the closing balance is the opening balance plus every entry in
    the range, and the aging buckets add up to what the open bills still owe at `end`."""
    all_entries = entries(bills)
    opening = sum(e.amount_cents for e in all_entries if e.day < start)
    balance = opening
    lines = []
    for e in all_entries:
        if start <= e.day <= end:
            balance += e.amount_cents
            lines.append(
                {
                    "date": e.day.isoformat(),
                    "kind": e.kind,
                    "bill_number": e.bill_number,
                    "description": DESCRIPTIONS[e.kind].format(number=e.bill_number, label=e.label),
                    "amount_cents": e.amount_cents,
                    "balance_cents": balance,
                }
            )
    totals = {
        kind: sum(ln["amount_cents"] for ln in lines if ln["kind"] == kind)
        for kind in ("charge", "payment", "refund", "adjustment", "adjustment_reversed", "cancellation")
    }
    return {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "opening_balance_cents": opening,
        "entries": lines,
        "charges_cents": totals["charge"],
        "payments_cents": -totals["payment"],
        "refunds_cents": totals["refund"],
        "adjustments_cents": -(totals["adjustment"] + totals["adjustment_reversed"]),
        "cancellations_cents": -totals["cancellation"],
        "closing_balance_cents": balance,
        "aging": aging(bills, end),
    }


@dataclass(frozen=True)
class CreditEntry:
    """One entry of the client's credit ledger (kept by payments; `balance_cents` after it)."""

    day: dt.date
    kind: str
    amount_cents: int
    balance_cents: int
    reason: str | None


def credit_section(credit: Sequence[CreditEntry], start: dt.date, end: dt.date) -> dict[str, Any]:
    """Credit entries in the range and the credit balance at the end (entries in ledger order)."""
    upto_end = [c for c in credit if c.day <= end]
    return {
        "credits": [
            {
                "date": c.day.isoformat(),
                "kind": c.kind,
                "amount_cents": c.amount_cents,
                "balance_cents": c.balance_cents,
                "reason": c.reason,
            }
            for c in upto_end
            if c.day >= start
        ],
        "credit_balance_cents": upto_end[-1].balance_cents if upto_end else 0,
    }
