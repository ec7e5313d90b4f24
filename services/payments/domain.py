"""Payment rules, pure: how a payment is split across bills and credit, how a refund is taken
back, how a third-party payout is reconciled. No I/O, no clock; every figure is int cents."""

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Payer = Literal["client", "insurance"]
Method = Literal["card", "cash", "check", "credit", "other"]


class PaymentRuleError(Exception):
    """A request the rules refuse: `status` 422 (invalid as asked) or 409 (not now)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BillBalance:
    """What payments knows of a bill: what this payer owes, what is already applied (card
    charges in flight hold their part) and how much of that is money in."""

    bill_id: str
    status: str
    owed_cents: int
    applied_cents: int
    settled_cents: int = 0

    @property
    def open_cents(self) -> int:
        return max(self.owed_cents - self.applied_cents, 0)


@dataclass(frozen=True)
class Application:
    bill_id: str
    amount_cents: int


@dataclass(frozen=True)
class PaymentPlan:
    applications: tuple[Application, ...]
    credit_cents: int

    @property
    def applied_cents(self) -> int:
        return sum(a.amount_cents for a in self.applications)


def owed_by(payer: Payer, client_owes_cents: int, insurance_owes_cents: int) -> int:
    return client_owes_cents if payer == "client" else insurance_owes_cents


def plan_payment(
    amount_cents: int,
    requested: Sequence[Application],
    balances: Mapping[str, BillBalance],
    *,
    method: Method,
    available_credit_cents: int = 0,
) -> PaymentPlan:
    """Split a payment: each requested bill gets at most its open balance; the excess, and
    whatever was not asked for any bill, becomes client credit. A payment from credit cannot
    exceed the credit available nor create credit."""
    if amount_cents <= 0:
        raise PaymentRuleError(422, "invalid_amount", "amount_cents must be positive")
    asked = sum(r.amount_cents for r in requested)
    if asked > amount_cents:
        raise PaymentRuleError(422, "allocations_exceed_amount", "allocations add up to more than amount_cents")
    if len({r.bill_id for r in requested}) != len(requested):
        raise PaymentRuleError(422, "duplicate_allocation", "a bill appears twice in allocations")
    applications = []
    for r in requested:
        bill = balances[r.bill_id]
        if bill.status == "cancelled":
            raise PaymentRuleError(409, "bill_cancelled", f"bill {r.bill_id} is cancelled")
        if bill.open_cents == 0:
            raise PaymentRuleError(409, "bill_fully_paid", f"bill {r.bill_id} has nothing open for this payer")
        applied = min(r.amount_cents, bill.open_cents)
        applications.append(Application(r.bill_id, applied))
    credit = amount_cents - sum(a.amount_cents for a in applications)
    if method == "credit":
        if amount_cents > available_credit_cents:
            raise PaymentRuleError(
                422, "insufficient_credit", f"only {available_credit_cents} cents of credit are available"
            )
        if credit:
            raise PaymentRuleError(422, "exceeds_balance", "a payment from credit cannot exceed the open balance")
    return PaymentPlan(tuple(applications), credit)


def plan_credit_use(available_credit_cents: int, balances: Sequence[BillBalance]) -> PaymentPlan:
    """Automatic use of credit: pay the given bills in order until the credit runs out."""
    left = available_credit_cents
    applications = []
    for bill in balances:
        if left <= 0:
            break
        if bill.status == "cancelled" or bill.open_cents == 0:
            continue
        take = min(left, bill.open_cents)
        applications.append(Application(bill.bill_id, take))
        left -= take
    return PaymentPlan(tuple(applications), 0)


@dataclass(frozen=True)
class RefundPlan:
    credit_cents: int
    applications: tuple[Application, ...] = field(default_factory=tuple)


def plan_refund(
    amount_cents: int | None,
    *,
    paid_cents: int,
    refunded_cents: int,
    credit_refundable_cents: int,
    applied: Sequence[Application],
    bill_id: str | None = None,
) -> tuple[int, RefundPlan]:
    """How much to refund and from where. Never more than what is left of the payment. The
    part of the payment that sits as unused credit is taken back first (so bills stay paid),
    then the bills, most recently applied first; `bill_id` refunds that one allocation only.
    `applied` is the payment's net amount per bill, in application order."""
    left = paid_cents - refunded_cents
    amount = left if amount_cents is None else amount_cents
    if amount <= 0:
        if amount_cents is None:
            raise PaymentRuleError(409, "already_refunded", "this payment is fully refunded")
        raise PaymentRuleError(422, "invalid_amount", "amount_cents must be positive")
    if amount > left:
        raise PaymentRuleError(422, "refund_exceeds_payment", f"only {left} cents of this payment can be refunded")
    if bill_id is not None:
        on_bill = sum(a.amount_cents for a in applied if a.bill_id == bill_id)
        if amount > on_bill:
            raise PaymentRuleError(
                422, "refund_exceeds_allocation", f"only {on_bill} cents of this payment are on bill {bill_id}"
            )
        return amount, RefundPlan(0, (Application(bill_id, amount),))
    from_credit = min(amount, max(credit_refundable_cents, 0))
    rest = amount - from_credit
    taken = []
    for a in reversed(applied):
        if rest == 0:
            break
        take = min(rest, a.amount_cents)
        if take > 0:
            taken.append(Application(a.bill_id, take))
            rest -= take
    if rest:
        raise PaymentRuleError(
            409, "credit_already_used", "part of this payment became credit that has since been used"
        )
    return amount, RefundPlan(from_credit, tuple(taken))


Flag = Literal["ok", "underpaid", "missing", "duplicate", "unexpected"]


@dataclass(frozen=True)
class ReconciliationRow:
    session_id: str
    expected_cents: int | None
    received_cents: int
    difference_cents: int
    flag: Flag
    remittance_ids: tuple[str, ...]


def reconcile_session(
    session_id: str, expected_cents: int | None, received: Sequence[tuple[str, int]]
) -> ReconciliationRow:
    """One session of a third-party payer: expected vs received (remittance id, cents)."""
    total = sum(cents for _, cents in received)
    ids = tuple(rid for rid, _ in received)
    if expected_cents is None:
        flag: Flag = "unexpected"
    elif not received:
        flag = "missing"
    elif len(received) > 1:
        flag = "duplicate"
    elif total < expected_cents:
        flag = "underpaid"
    else:
        flag = "ok"
    return ReconciliationRow(session_id, expected_cents, total, total - (expected_cents or 0), flag, ids)


def expected_payer_amount(
    payer: str, service_codes: Sequence[tuple[str, int]], fee_schedule: Mapping[str, Mapping[str, int]]
) -> int:
    """What a platform should pay for a session: its rate per service code from the
    practice's settings, or the session fee where no rate is set."""
    rates = fee_schedule.get(payer, {})
    return sum(rates.get(code, fee) for code, fee in service_codes)


# ---- autopay -----------------------------------------------------------------------------

AUTOPAY_MAX_FAILED_NIGHTS = 3


def autopay_night(as_of: dt.datetime, timezone: str, run_at: dt.time) -> dt.date:
    """The night whose autopay run is due at `as_of`: the practice's local date once its local
    time has reached `run_at`, else the night before. Local time comes from zoneinfo, so a DST
    change neither skips nor repeats a night."""
    local = as_of.astimezone(zoneinfo.ZoneInfo(timezone))
    return local.date() if local.time() >= run_at else local.date() - dt.timedelta(days=1)


@dataclass(frozen=True)
class AutopayCard:
    id: str
    holder: str
    is_default: bool


def autopay_cards(autopay_card_id: str, authorized: Sequence[AutopayCard], *, is_minor: bool) -> list[str]:
    """The cards tried for an autopay charge, in order: for a minor the billing contact's
    authorized cards first (the default one first), then the card autopay was set up with."""
    order = []
    if is_minor:
        contact = [c for c in authorized if c.holder == "billing_contact"]
        order = [c.id for c in sorted(contact, key=lambda c: not c.is_default)]
    if autopay_card_id not in order:
        order.append(autopay_card_id)
    return order


def cards_for_bill(party: str | None, client_order: list[str], authorized: Sequence[AutopayCard]) -> list[str]:
    """The cards autopay tries on a bill: a split bill for a guardian (`guardian:<id>`) only that
    guardian's own authorized cards, default first, never the client's; any other bill the
    client's order (`autopay_cards`)."""
    if party is None or not party.startswith("guardian:"):
        return client_order
    own = [c for c in authorized if c.holder == party]
    return [c.id for c in sorted(own, key=lambda c: not c.is_default)]


@dataclass(frozen=True)
class NightOutcome:
    failed_nights: int
    disable: bool


def after_night(failed_nights: int, *, failed: bool) -> NightOutcome:
    """A client's consecutive failed nights after tonight: a good night resets the count; the
    AUTOPAY_MAX_FAILED_NIGHTS-th failure in a row turns autopay off."""
    count = failed_nights + 1 if failed else 0
    return NightOutcome(count, count >= AUTOPAY_MAX_FAILED_NIGHTS)


def plan_reversal(taken: Sequence[Application], open_now: Mapping[str, BillBalance]) -> list[Application]:
    """Giving back a refund Stripe refused: each bill gets at most what is open on it now (it
    may have been paid again, or cancelled, since the refund reopened it); the caller turns
    the rest into client credit."""
    back = []
    open_left = {b: bal.open_cents if bal.status != "cancelled" else 0 for b, bal in open_now.items()}
    for part in taken:
        amount = min(part.amount_cents, open_left.get(part.bill_id, 0))
        if amount > 0:
            open_left[part.bill_id] -= amount
            back.append(Application(part.bill_id, amount))
    return back


# ---- payment plans -----------------------------------------------------------------------

Frequency = Literal["weekly", "biweekly", "monthly"]
PLAN_MAX_FAILED_IN_ROW = 3
PLAN_MAX_INSTALLMENTS = 120


@dataclass(frozen=True)
class Installment:
    due_date: dt.date
    amount_cents: int


def installment_date(start: dt.date, frequency: Frequency, n: int) -> dt.date:
    """The n-th (0-based) due date: every 7 or 14 days, or the start's day of every month
    (the month's last day when it is shorter: a plan started on the 31st pays on Feb 28)."""
    if frequency == "weekly":
        return start + dt.timedelta(weeks=n)
    if frequency == "biweekly":
        return start + dt.timedelta(weeks=2 * n)
    month = start.month - 1 + n
    year, month = start.year + month // 12, month % 12 + 1
    last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(start.day, last_day))


def plan_schedule(total_cents: int, installments: int, frequency: Frequency, start: dt.date) -> list[Installment]:
    """Split the open balance into installments that add up to it exactly: equal shares, the
    cents the division leaves one each on the first installments."""
    if total_cents <= 0:
        raise PaymentRuleError(409, "nothing_open", "the bills have no open balance for the client to pay")
    if not 1 <= installments <= PLAN_MAX_INSTALLMENTS:
        raise PaymentRuleError(422, "invalid_installments", f"installments must be 1 to {PLAN_MAX_INSTALLMENTS}")
    if installments > total_cents:
        raise PaymentRuleError(422, "invalid_installments", "more installments than cents to pay")
    share, rest = divmod(total_cents, installments)
    return [
        Installment(installment_date(start, frequency, n), share + (1 if n < rest else 0)) for n in range(installments)
    ]


def installment_charge(amount_cents: int, open_cents: int, *, last: bool) -> int:
    """What an installment charges: its amount, capped at what is still open on the plan's bills
    (paid down some other way meanwhile); the last one charges all that is still open, so what
    a failed installment left unpaid is caught up at the end."""
    return max(open_cents, 0) if last else max(min(amount_cents, open_cents), 0)


def after_installment(failed_in_row: int, *, failed: bool) -> NightOutcome:
    """Consecutive failed installments: a paid one resets the count; the
    PLAN_MAX_FAILED_IN_ROW-th failure in a row defaults the plan (`disable`)."""
    count = failed_in_row + 1 if failed else 0
    return NightOutcome(count, count >= PLAN_MAX_FAILED_IN_ROW)
