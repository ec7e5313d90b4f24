"""Billing rules, pure: no Kafka, no SQL, no clock (callers pass `today`/`now`).

Money is int cents. The fee of a session's service (`fee_cents`) is the price of that line
as scheduling sent it (already for all its units): a session's amount is the sum of its
billable services' fees. The one rounding point is `shared.money.percent_of`.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from shared.events import Client, Party, SessionService
from shared.money import percent_of

Responsibility = Literal["client", "insurance"]
BillStatus = Literal["open", "paid", "closed", "cancelled"]
AdjustmentKind = Literal["write_off", "discount", "bad_debt"]

MISSED_CODES = {"no_show": ("NO-SHOW", "No-show fee"), "late_cancel": ("LATE-CANCEL", "Late cancellation fee")}


class RuleViolation(Exception):
    """A rule forbids this now (HTTP 409) or the request is inconsistent (HTTP 422)."""

    def __init__(self, code: str, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class MissedFees:
    no_show_cents: int = 0
    late_cancel_cents: int = 0

    def for_attendance(self, attendance: str) -> int:
        return {"no_show": self.no_show_cents, "late_cancel": self.late_cancel_cents}.get(attendance, 0)


@dataclass(frozen=True)
class Line:
    """One priced line of a bill (or of the Unbilled section)."""

    session_id: str
    date_of_service: dt.date
    code: str
    description: str | None
    modifiers: tuple[str, ...]
    units: int
    amount_cents: int
    client_owes_cents: int = 0
    insurance_owes_cents: int = 0
    voided: bool = False


def ensure_client_billable(session_id: str, payer: str, platforms: frozenset[str]) -> None:
    """A session a third-party platform (Headway, Alma, ...) pays is an expected payout that
    payments reconciles, never a charge to the client."""
    if payer in platforms:
        raise RuleViolation(
            "session_paid_by_third_party",
            f"session {session_id} is paid by {payer}: it is tracked as an expected payout, not billed to the client",
        )


def services_cents(services: Iterable[SessionService]) -> int:
    """What a session's own services charge: billable lines with a fee above $0."""
    return sum(s.fee_cents for s in services if s.billable and s.fee_cents > 0)


def session_lines(
    session_id: str,
    date_of_service: dt.date,
    attendance: str,
    services: Sequence[SessionService],
    fees: MissedFees,
) -> list[Line]:
    """The billable lines of a session. A missed session (`no_show`, `late_cancel`) is billed
    only through the practice's fee for that kind, as one line; an attended one by its
    billable services with a fee above $0. No lines = never shows as unbilled."""
    if attendance in MISSED_CODES:
        fee = fees.for_attendance(attendance)
        if fee <= 0:
            return []
        code, description = MISSED_CODES[attendance]
        return [Line(session_id, date_of_service, code, description, (), 1, fee)]
    return [
        Line(session_id, date_of_service, s.code, s.description, tuple(s.modifiers), s.units, s.fee_cents)
        for s in services
        if s.billable and s.fee_cents > 0
    ]


@dataclass(frozen=True)
class LineEdit:
    session_id: str
    code: str
    description: str | None
    amount_cents: int


def apply_edits(lines: Sequence[Line], edits: Sequence[LineEdit]) -> list[Line]:
    """Per-line service and price edits. The edits given for a session replace that session's
    lines (an edit whose code matches an original line keeps its modifiers and units); sessions
    without edits keep their lines."""
    by_session: dict[str, list[LineEdit]] = {}
    for edit in edits:
        by_session.setdefault(edit.session_id, []).append(edit)
    unknown = set(by_session) - {line.session_id for line in lines}
    if unknown:
        raise RuleViolation(
            "line_session_not_on_bill", f"lines name sessions not on this bill: {sorted(unknown)}", status=422
        )
    out: list[Line] = []
    seen: set[str] = set()
    for line in lines:
        if line.session_id not in by_session:
            out.append(line)
            continue
        if line.session_id in seen:
            continue
        seen.add(line.session_id)
        originals = {orig.code: orig for orig in lines if orig.session_id == line.session_id}
        for edit in by_session[line.session_id]:
            orig = originals.get(edit.code)
            out.append(
                Line(
                    session_id=line.session_id,
                    date_of_service=line.date_of_service,
                    code=edit.code,
                    description=edit.description
                    if edit.description is not None
                    else (orig.description if orig else None),
                    modifiers=orig.modifiers if orig else (),
                    units=orig.units if orig else 1,
                    amount_cents=edit.amount_cents,
                )
            )
    return out


def split_lines(
    lines: Sequence[Line],
    responsibility: Responsibility,
    *,
    copay_cents: int | None = None,
    coinsurance_percent: Decimal | None = None,
) -> list[Line]:
    """Who owes what on each line.

    - `client` responsibility: the client owes every line in full.
    - `insurance` with a copay: the copay is per session (a visit's copay), taken from that
      session's lines in order up to their amounts; insurance owes the rest.
    - `insurance` with coinsurance: the client owes `percent_of(line, percent)` of each line,
      rounded half-even once per line; insurance owes the rest, so the two always add up to
      the line amount exactly.
    - `insurance` with neither: insurance owes every line in full.
    """
    if responsibility == "client":
        if copay_cents is not None or coinsurance_percent is not None:
            raise RuleViolation("copay_needs_insurance", "copay and coinsurance apply to insurance bills", status=422)
        return [_owed(line, line.amount_cents) for line in lines]
    if copay_cents is not None and coinsurance_percent is not None:
        raise RuleViolation("copay_or_coinsurance", "give a copay or a coinsurance, not both", status=422)
    if coinsurance_percent is not None:
        return [_owed(line, percent_of(line.amount_cents, coinsurance_percent)) for line in lines]
    if copay_cents is not None:
        left: dict[str, int] = {}
        out = []
        for line in lines:
            remaining = left.setdefault(line.session_id, copay_cents)
            client = min(remaining, line.amount_cents)
            left[line.session_id] = remaining - client
            out.append(_owed(line, client))
        return out
    return [_owed(line, 0) for line in lines]


def _owed(line: Line, client_cents: int) -> Line:
    return Line(
        line.session_id, line.date_of_service, line.code, line.description, line.modifiers, line.units,
        line.amount_cents, client_cents, line.amount_cents - client_cents, line.voided,
    )  # fmt: skip


@dataclass(frozen=True)
class SplitPart:
    """One payer of a split bill: `client` or `guardian:<id>`, and its percent of every line."""

    party: str
    percent: Decimal


def check_split(parts: Sequence[SplitPart]) -> None:
    """At least two distinct parties, each above 0%, adding up to exactly 100%."""
    if len(parts) < 2:
        raise RuleViolation("invalid_split", "a split names at least two parties", status=422)
    if len({p.party for p in parts}) != len(parts):
        raise RuleViolation("invalid_split", "a split names each party once", status=422)
    if any(p.percent <= 0 for p in parts) or sum(p.percent for p in parts) != 100:
        raise RuleViolation("invalid_split", "split percents must be above 0 and add up to 100", status=422)


def split_amount(amount_cents: int, percents: Sequence[Decimal]) -> list[int]:
    """`amount_cents` divided by `percents` (adding up to 100): every party after the first gets
    its percent rounded half-even (`percent_of`), the first party what is left, so the shares
    always add up to the amount exactly. Should the others' roundings up leave the first party
    below 0 (tiny amounts, many parties), the last parties give a cent back until it is not."""
    shares = [percent_of(amount_cents, p) for p in percents]
    shares[0] = amount_cents - sum(shares[1:])
    i = len(shares) - 1
    while shares[0] < 0:
        if shares[i] > 0:
            shares[i] -= 1
            shares[0] += 1
        i = i - 1 if i > 1 else len(shares) - 1
    return shares


def split_bill_lines(lines: Sequence[Line], percents: Sequence[Decimal]) -> list[list[Line]]:
    """Each party's lines: every line divided by `split_amount`, the party owing its share in full."""
    per_party: list[list[Line]] = [[] for _ in percents]
    for line in lines:
        for party_lines, share in zip(per_party, split_amount(line.amount_cents, percents), strict=True):
            party_lines.append(_owed(_priced(line, share), share))
    return per_party


def _priced(line: Line, amount_cents: int) -> Line:
    return Line(
        line.session_id, line.date_of_service, line.code, line.description, line.modifiers, line.units, amount_cents
    )


def party_of(client: Client, party: str) -> Party:
    """Who a split bill is addressed to: `client` (for a minor, the billing contact) or
    `guardian:<id>`, the guardian with that id (or, for a guardian without one, that email)."""
    if party == "client":
        return bill_to(client)
    if party.startswith("guardian:"):
        key = party.removeprefix("guardian:")
        for g in client.guardians:
            if (g.id or g.email) == key:
                return Party(name=g.name, email=g.email, address=client.address)
    raise RuleViolation("unknown_party", f"{party!r} is not the client or one of their guardians", status=422)


@dataclass(frozen=True)
class Fact:
    """A payment or refund applied to one bill (from payments.events)."""

    payment_id: str
    kind: Literal["payment", "refund"]
    payer: Responsibility
    amount_cents: int


@dataclass(frozen=True)
class Adjustment:
    """A standing (not reversed) adjustment: cents taken off what `payer` owes, no money moved."""

    payer: Responsibility
    amount_cents: int


@dataclass(frozen=True)
class Standing:
    paid_cents: int
    balance_cents: int
    client_owes_cents: int
    insurance_owes_cents: int
    adjusted_cents: int = 0


def standing(
    total_cents: int, client_share_cents: int, facts: Iterable[Fact], adjustments: Iterable[Adjustment] = ()
) -> Standing:
    """Paid, adjusted and owed, derived from the facts only: balance = total − paid − adjusted.
    Each party's payments and adjustments go first to its own share; an overpayment of one share
    covers the other's, so the two owed figures always add up to the balance and never go below
    zero while the balance is not negative."""
    paid_by = {"client": 0, "insurance": 0}
    for fact in facts:
        paid_by[fact.payer] += fact.amount_cents if fact.kind == "payment" else -fact.amount_cents
    adjusted_by = {"client": 0, "insurance": 0}
    for adjustment in adjustments:
        adjusted_by[adjustment.payer] += adjustment.amount_cents
    paid = paid_by["client"] + paid_by["insurance"]
    adjusted = adjusted_by["client"] + adjusted_by["insurance"]
    balance = total_cents - paid - adjusted
    insurance_share = total_cents - client_share_cents
    insurance_owes = max(0, min(balance, insurance_share - paid_by["insurance"] - adjusted_by["insurance"]))
    return Standing(paid, balance, balance - insurance_owes, insurance_owes, adjusted)


def status_after(current: BillStatus, balance_cents: int, adjusted_cents: int = 0) -> BillStatus:
    """`open` ⇄ `paid`/`closed` follow the balance: at 0 a bill with a standing adjustment is
    `closed`, one settled by payments alone `paid`; `cancelled` is final."""
    if current == "cancelled":
        return current
    if balance_cents > 0:
        return "open"
    return "closed" if adjusted_cents > 0 else "paid"


def owed_by(standing_: Standing, payer: Responsibility) -> int:
    return standing_.client_owes_cents if payer == "client" else standing_.insurance_owes_cents


def ensure_adjustable(status: BillStatus, standing_: Standing, payer: Responsibility, amount_cents: int) -> None:
    """An adjustment lowers what `payer` still owes, never below zero, on a bill not cancelled."""
    if status == "cancelled":
        raise RuleViolation("bill_cancelled", "a cancelled bill cannot be adjusted")
    open_cents = owed_by(standing_, payer)
    if amount_cents > open_cents:
        raise RuleViolation(
            "adjustment_exceeds_balance",
            f"the {payer}'s open balance on this bill is {open_cents} cents; an adjustment cannot exceed it",
            status=422,
        )


def payment_excess(standing_: Standing, payer: Responsibility, amount_cents: int) -> int:
    """The part of a payment a bill cannot take because adjustments already cleared what this
    payer owed: it goes back to payments as client credit (never applied to written-off cents)."""
    if standing_.adjusted_cents <= 0:
        return 0
    return max(0, amount_cents - max(0, standing_.balance_cents))


def unrefunded_payments(facts: Iterable[Fact]) -> dict[str, int]:
    """Per payment, what is still applied to the bill after its refunds (only those above 0)."""
    net: dict[str, int] = {}
    for fact in facts:
        net[fact.payment_id] = net.get(fact.payment_id, 0) + (
            fact.amount_cents if fact.kind == "payment" else -fact.amount_cents
        )
    return {pid: cents for pid, cents in net.items() if cents > 0}


def ensure_cancellable(status: BillStatus, facts: Iterable[Fact]) -> None:
    if status == "cancelled":
        raise RuleViolation("bill_cancelled", "the bill is already cancelled")
    if unrefunded_payments(facts):
        raise RuleViolation("bill_has_payments", "refund the payments on this bill before cancelling it")


def bill_to(client: Client) -> Party:
    """Who a bill is addressed to: for a minor the guardian marked billing contact (else the
    first guardian), with the client's address; otherwise the client."""
    if client.is_minor and client.guardians:
        contact = next((g for g in client.guardians if g.is_billing_contact), client.guardians[0])
        return Party(name=contact.name, email=contact.email, address=client.address)
    return patient(client)


def patient(client: Client) -> Party:
    return Party(name=f"{client.first_name} {client.last_name}", email=client.email, address=client.address)


def due_date(issued_on: dt.date, requested: dt.date | None, default_days: int, default_date: dt.date | None) -> dt.date:
    """A requested date wins; then the practice's fixed date if it is not past; else the days."""
    if requested is not None:
        if requested < issued_on:
            raise RuleViolation("due_date_in_past", "the due date is before the issue date", status=422)
        return requested
    if default_date is not None and default_date >= issued_on:
        return default_date
    return issued_on + dt.timedelta(days=default_days)


def access_code(random_below: int) -> str:
    """The 6-digit code printed on the bill for the pay page (`random_below` < 10**6)."""
    return f"{random_below % 1_000_000:06d}"
