"""The reports' rules, pure: journal entries for each money fact, aging buckets, and how a bill's
figures spread over its lines. No SQL, no Kafka, no clock.

The journal (CONTRACT.md, reports): every money fact is one entry whose debits equal its credits.
- A bill charges the client's share to `accounts_receivable` and the insurer's share to
  `insurance_receivable`, against `service_revenue`. A later version of the bill (lines edited,
  cancelled, adjusted) books only the difference from what was booked before, so what the
  journal holds for a bill is always what the bill says now.
- A payment debits where the money is (`stripe_clearing` for cards, `undeposited_funds` for
  cash, check and other, `client_credit` when the client's credit pays) and credits the payer's
  receivable for what reached bills and `client_credit` for the rest; a refund is the mirror.
- A payment that reached a cancelled bill becomes credit: receivable back up, `client_credit` down.
- A credit adjustment (discount, reimbursement) is contra revenue: `discounts` against `client_credit`.
- An adjustment on a bill takes its amount off the payer's receivable: a discount against
  `discounts`, a write-off or bad debt against `write_offs` (a reversal books it back).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Account = Literal[
    "accounts_receivable",
    "insurance_receivable",
    "service_revenue",
    "undeposited_funds",
    "stripe_clearing",
    "client_credit",
    "write_offs",
    "discounts",
]
ACCOUNTS: tuple[Account, ...] = (
    "accounts_receivable",
    "insurance_receivable",
    "service_revenue",
    "undeposited_funds",
    "stripe_clearing",
    "client_credit",
    "write_offs",
    "discounts",
)
RECEIVABLES: tuple[Account, ...] = ("accounts_receivable", "insurance_receivable")

# Names an accountant's chart of accounts uses (the CSV's AccountName column).
ACCOUNT_NAMES: dict[str, str] = {
    "accounts_receivable": "Accounts Receivable",
    "insurance_receivable": "Insurance Receivable",
    "service_revenue": "Service Revenue",
    "undeposited_funds": "Undeposited Funds",
    "stripe_clearing": "Stripe Clearing",
    "client_credit": "Client Credit",
    "write_offs": "Write-offs",
    "discounts": "Discounts",
}

METHOD_ACCOUNT: dict[str, Account] = {
    "card": "stripe_clearing",
    "cash": "undeposited_funds",
    "check": "undeposited_funds",
    "other": "undeposited_funds",
    "credit": "client_credit",
}

# Credit ledger kinds that are a money fact of their own; the others mirror a payment, refund
# or rejected allocation that already has its entry.
CREDIT_ADJUSTMENT_KINDS = frozenset({"discount", "reimbursement"})


class UnbalancedFact(ValueError):
    """An event whose parts do not add up (e.g. allocations + credit ≠ amount): never booked."""


@dataclass(frozen=True)
class JournalLine:
    account: Account
    debit_cents: int
    credit_cents: int


@dataclass(frozen=True)
class JournalEntry:
    source_kind: str
    source_id: str
    memo: str
    lines: tuple[JournalLine, ...]

    @property
    def debits(self) -> int:
        return sum(line.debit_cents for line in self.lines)

    @property
    def credits(self) -> int:
        return sum(line.credit_cents for line in self.lines)


def entry(source_kind: str, source_id: str, memo: str, postings: Iterable[tuple[Account, int]]) -> JournalEntry | None:
    """One entry from signed postings (positive = debit), one line per account; None when
    nothing moves. Raises UnbalancedFact when the postings do not sum to zero."""
    net: dict[Account, int] = {}
    for account, cents in postings:
        net[account] = net.get(account, 0) + cents
    if sum(net.values()) != 0:
        raise UnbalancedFact(f"{source_kind} {source_id}: debits and credits differ by {sum(net.values())} cents")
    lines = tuple(
        JournalLine(account, max(cents, 0), max(-cents, 0))
        for account, cents in sorted(net.items(), key=lambda kv: (kv[1] < 0, ACCOUNTS.index(kv[0])))
        if cents
    )
    return JournalEntry(source_kind, source_id, memo, lines) if lines else None


def receivable(payer: str) -> Account:
    return "insurance_receivable" if payer == "insurance" else "accounts_receivable"


Booked = dict[str, int]
"""What the journal holds for one bill, per account (debits positive)."""

ADJUSTMENT_ACCOUNT: dict[str, Account] = {"write_off": "write_offs", "bad_debt": "write_offs", "discount": "discounts"}


def bill_target(
    status: str, total_cents: int, insurance_share_cents: int, adjustments: Iterable[tuple[str, str, int]]
) -> Booked:
    """What the journal should hold for a bill in this state: each payer's share less what
    standing adjustments `(payer, kind, cents)` took off it, against revenue and the adjustment
    accounts; nothing once the bill is cancelled."""
    if status == "cancelled":
        return {}
    target: Booked = {
        "accounts_receivable": total_cents - insurance_share_cents,
        "insurance_receivable": insurance_share_cents,
        "service_revenue": -total_cents,
    }
    for payer, kind, cents in adjustments:
        target[receivable(payer)] -= cents
        account = ADJUSTMENT_ACCOUNT[kind]
        target[account] = target.get(account, 0) + cents
    return target


def bill_entry(bill_id: str, number: int, booked: Booked, target: Booked, *, cancelled: bool) -> JournalEntry | None:
    """The difference between what is booked for a bill and what it now says."""
    if cancelled:
        memo = f"Bill #{number} cancelled"
    elif not booked:
        memo = f"Bill #{number}"
    elif any(booked.get(a, 0) != target.get(a, 0) for a in ("write_offs", "discounts")):
        memo = f"Bill #{number} adjusted"
    else:
        memo = f"Bill #{number} changed"
    postings = [(a, target.get(a, 0) - booked.get(a, 0)) for a in ACCOUNTS]
    return entry("bill", bill_id, memo, postings)


def payment_entry(
    payment_id: str, method: str, payer: str, amount_cents: int, allocated_cents: int, credit_cents: int
) -> JournalEntry | None:
    """Money in: where it is held, against the receivable it settled and the credit it left."""
    if allocated_cents + credit_cents != amount_cents:
        raise UnbalancedFact(
            f"payment {payment_id}: allocations {allocated_cents} + credit {credit_cents} ≠ amount {amount_cents}"
        )
    memo = "Payment from client credit" if method == "credit" else f"{payer.capitalize()} payment ({method})"
    return entry(
        "payment",
        payment_id,
        memo,
        [
            (METHOD_ACCOUNT[method], amount_cents),
            (receivable(payer), -allocated_cents),
            ("client_credit", -credit_cents),
        ],
    )


def refund_entry(
    refund_id: str, method: str, payer: str, amount_cents: int, allocated_cents: int, credit_cents: int
) -> JournalEntry | None:
    """Money back out: the mirror of a payment (a refund of a credit payment returns to credit)."""
    if method == "credit":
        allocated_cents = amount_cents - credit_cents
    if allocated_cents + credit_cents != amount_cents:
        raise UnbalancedFact(
            f"refund {refund_id}: allocations {allocated_cents} + credit {credit_cents} ≠ amount {amount_cents}"
        )
    return entry(
        "refund",
        refund_id,
        f"Refund ({method})",
        [
            (receivable(payer), allocated_cents),
            ("client_credit", credit_cents),
            (METHOD_ACCOUNT[method], -amount_cents),
        ],
    )


def rejected_entry(payment_id: str, bill_id: str, payer: str, amount_cents: int) -> JournalEntry | None:
    """A payment that reached a cancelled bill: it is the client's credit now."""
    return entry(
        "allocation_rejected",
        f"{payment_id}:{bill_id}",
        "Payment on a cancelled bill to client credit",
        [(receivable(payer), amount_cents), ("client_credit", -amount_cents)],
    )


def credit_adjustment_entry(entry_id: str, kind: str, amount_cents: int) -> JournalEntry | None:
    """A discount or reimbursement given as credit: contra revenue."""
    return entry(
        "credit_adjustment",
        entry_id,
        f"Client credit: {kind}",
        [("discounts", amount_cents), ("client_credit", -amount_cents)],
    )


# ---- aging ------------------------------------------------------------------------------

BUCKETS = ("current", "d1_30", "d31_60", "d61_90", "d90_plus")
"""Aging by days past the due date: not yet due, 1–30, 31–60, 61–90, over 90 (in SQL: queries.aging)."""

MOVE_SIGN: dict[str, int] = {"payment": 1, "adjustment": 1, "refund": -1, "adjustment_reversed": -1}
"""How a move on a bill changes what was taken off it (queries.aging replays the same rule in SQL)."""


@dataclass(frozen=True)
class OpenBalance:
    moved_client_cents: int
    moved_insurance_cents: int
    open_cents: int
    open_insurance_cents: int


def open_balance(total_cents: int, insurance_share_cents: int, moves: Iterable[tuple[str, str, int]]) -> OpenBalance:
    """What a bill still owes after its moves `(kind, payer, cents)`, and the insurer's part of
    it: each payer's moves go to its own share first (billing's rule), so the insurer owes its
    share less its own moves, never more than is open."""
    moved = {"client": 0, "insurance": 0}
    for kind, payer, cents in moves:
        moved["insurance" if payer == "insurance" else "client"] += MOVE_SIGN[kind] * cents
    left = total_cents - moved["client"] - moved["insurance"]
    insurance = max(0, min(left, insurance_share_cents - moved["insurance"])) if left > 0 else 0
    return OpenBalance(moved["client"], moved["insurance"], left, insurance)


# ---- spreading a bill over its lines -----------------------------------------------------


def split(amount_cents: int, weights: Sequence[int]) -> list[int]:
    """`amount_cents` in parts proportional to `weights` that add up exactly (largest
    remainder; ties to the earlier part). All-zero weights put everything on the first part."""
    if not weights:
        return []
    total = sum(weights)
    if total == 0:
        return [amount_cents] + [0] * (len(weights) - 1)
    sign = -1 if amount_cents < 0 else 1
    amount = abs(amount_cents)
    floors = [amount * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in remainders[: amount - sum(floors)]:
        floors[i] += 1
    return [sign * f for f in floors]


@dataclass(frozen=True)
class LineFigures:
    billed_cents: int
    collected_cents: int
    adjusted_cents: int
    outstanding_cents: int


def line_figures(line_amounts: Sequence[int], *, paid_cents: int, balance_cents: int) -> list[LineFigures]:
    """A bill's billed, collected, adjusted and outstanding spread over its lines by amount;
    billed = collected + adjusted + outstanding per line."""
    collected = split(paid_cents, line_amounts)
    outstanding = split(balance_cents, line_amounts)
    return [LineFigures(a, c, a - c - o, o) for a, c, o in zip(line_amounts, collected, outstanding, strict=True)]


# ---- money in the practice's currency ------------------------------------------------------

ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


def minor_digits(currency: str) -> int:
    """Decimal places of the currency's amounts ("1234.50" in USD, "1234" in JPY)."""
    return 0 if currency.upper() in ZERO_DECIMAL else 2
