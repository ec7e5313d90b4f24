"""The rules of notifying a client, pure: who receives it, what it says, whether it waits for
a PDF, and how a failed send is retried. No SMTP, SQL, Kafka or clock here."""

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from shared.events import (
    Allocation,
    BillSnapshot,
    Client,
    DocumentSource,
    PaymentInfo,
    PaymentPlanInfo,
    RefundInfo,
    ShareDelivery,
)
from shared.money import format_money

DELIVERY_NAMESPACE = uuid.UUID("5b0f3c1e-8f5e-4a57-9a7e-2f4d6c1b0a93")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")

Channel = Literal["email", "portal"]
FailureKind = Literal["transient", "permanent"]


@dataclass(frozen=True)
class Contact:
    """The person an email goes to: the billing-contact guardian for a minor, else the client."""

    name: str
    email: str | None


@dataclass(frozen=True)
class DocumentNeed:
    """The rendered PDF an email refers to: this source at this version or newer."""

    kind: str
    source_id: str
    min_version: int
    filename: str


@dataclass(frozen=True)
class Draft:
    """One notification to send: what it is, its words (template + context), and its PDF.
    The subject is one line whatever names upstream sent (no header injection)."""

    kind: str
    subject: str
    summary: str
    template: str
    context: dict[str, Any]
    action_url: str | None = None
    document: DocumentNeed | None = None
    attach_pdf: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", " ".join(self.subject.split()))


def delivery_id(cause_event_id: str, kind: str) -> str:
    """Deterministic per cause: a redelivered event maps to the same delivery and Message-ID."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{cause_event_id}:{kind}"))


def notification_id(delivery_id: str) -> str:
    """The portal notification of a delivery: one per delivery, whichever replica records it."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"notification:{delivery_id}"))


def is_deliverable_address(address: str | None) -> bool:
    return bool(address) and _ADDRESS.match(address.strip()) is not None  # type: ignore[union-attr]


def contact_for(client: Client) -> Contact:
    """For a minor, the guardian marked billing contact (else the first with an email)."""
    name = f"{client.first_name} {client.last_name}".strip()
    if client.is_minor and client.guardians:
        billing = [g for g in client.guardians if g.is_billing_contact]
        guardian = billing[0] if billing else next((g for g in client.guardians if g.email), client.guardians[0])
        return Contact(guardian.name, guardian.email)
    return Contact(name, client.email)


def channel_for(email: str | None, *, email_wanted: bool = True) -> Channel:
    """No address, or the practice/client chose portal only: the portal feed alone."""
    return "email" if email_wanted and email else "portal"


def retry_delay(attempts: int, base: dt.timedelta, cap: dt.timedelta) -> dt.timedelta:
    """Exponential backoff after the `attempts`-th failed try: base, 2×base, 4×base … ≤ cap."""
    if attempts < 1:
        return dt.timedelta(0)
    exponent = min(attempts - 1, 30)
    return min(base * (2**exponent), cap)


@dataclass(frozen=True)
class KnownBill:
    """The newest snapshot notifications has seen of a bill."""

    balance_cents: int
    payment_ids: frozenset[str]


def remaining_after(payment_id: str, allocations: list[Allocation], bills: dict[str, KnownBill]) -> int | None:
    """Balance left on the bills a payment went to, or None when not known for certain.

    The payment event carries it (`balance_after_cents`); for an event without it, billing's
    snapshot, which may arrive before or after the payment event: a snapshot that already
    lists the payment shows the balance after it, an older one is reduced by the allocation."""
    if not allocations:
        return None
    if all(a.balance_after_cents is not None for a in allocations):
        # payments computed it under the bill lock: exact even when payments come in quick
        # succession, which billing's snapshots (one behind) cannot be.
        return sum(a.balance_after_cents or 0 for a in allocations)
    total = 0
    for allocation in allocations:
        bill = bills.get(allocation.bill_id)
        if bill is None:
            return None
        paid = 0 if payment_id in bill.payment_ids else allocation.amount_cents
        total += bill.balance_cents - paid
    return total if total >= 0 else None


def classify_smtp_code(code: int) -> FailureKind:
    """SMTP reply classes: 4xx is try-again-later, 5xx is a permanent refusal."""
    return "permanent" if 500 <= code < 600 else "transient"


def after_failure(attempts: int, max_attempts: int, kind: FailureKind) -> Literal["retry", "failed"]:
    if kind == "permanent" or attempts >= max_attempts:
        return "failed"
    return "retry"


# ---- what each notification says ------------------------------------------------------------


def _practice_name(name: str) -> str:
    return name or "your therapy practice"


def bill_shared(bill: BillSnapshot, share: ShareDelivery) -> Draft:
    currency = bill.practice.currency
    amount = format_money(bill.balance_cents, currency)
    practice = _practice_name(bill.practice.name)
    pay_url = share.action_url or bill.pay_url
    due = bill.due_date.isoformat()
    return Draft(
        kind="bill_shared",
        subject=f"Your bill #{bill.number} from {practice}",
        summary=(
            f"A bill for {amount} is due on {due}. "
            f"Pay online with bill number {bill.number} and access code {bill.access_code}."
        ),
        template="bill_shared",
        context={
            "practice": practice,
            "recipient": share.recipient.name,
            "patient": bill.patient.name,
            "number": bill.number,
            "amount": amount,
            "total": format_money(bill.total_cents, currency),
            "paid": format_money(bill.paid_cents, currency) if bill.paid_cents else None,
            "issued_on": bill.issued_on.isoformat(),
            "due_date": due,
            "access_code": bill.access_code,
            "pay_url": pay_url,
            "comments": bill.comments,
        },
        action_url=pay_url,
        document=DocumentNeed("bill", bill.id, bill.version, f"bill-{bill.number}.pdf"),
        attach_pdf=share.attach_pdf,
    )


@dataclass(frozen=True)
class IssuedLabels:
    label: str
    what: str
    cents_key: str
    amount_label: str


ISSUED_LABELS = {
    "statement": IssuedLabels("statement", "Your statement of account", "closing_balance_cents", "Balance due"),
    "superbill": IssuedLabels(
        "superbill", "Your superbill (an itemized receipt to claim reimbursement from your insurer)",
        "total_fee_cents", "Total",
    ),
    "good_faith_estimate": IssuedLabels(
        "Good Faith Estimate", "Your Good Faith Estimate of the expected charges for your care", "total_cents",
        "Estimated total",
    ),
}  # fmt: skip


def document_shared(source: DocumentSource, share: ShareDelivery) -> Draft:
    """A statement, superbill or Good Faith Estimate: what it is, its amount if the body carries one."""
    practice = _practice_name(source.practice.name)
    currency = source.practice.currency
    labels = ISSUED_LABELS[source.kind]
    label = labels.label
    cents = source.body.get(labels.cents_key)
    amount = format_money(cents, currency) if isinstance(cents, int) and not isinstance(cents, bool) else None
    period = _period(source.body)
    summary = f"Your {label} #{source.number} from {practice} is ready"
    summary += f" for {period}." if period else "."
    if amount:
        summary += f" {labels.amount_label}: {amount}."
    return Draft(
        kind=f"{source.kind}_shared",
        subject=f"Your {label} #{source.number} from {practice}",
        summary=summary,
        template="document_shared",
        context={
            "practice": practice,
            "recipient": share.recipient.name,
            "patient": source.patient.name,
            "label": label,
            "what": labels.what,
            "number": source.number,
            "issued_on": source.issued_on.isoformat(),
            "period": period,
            "amount": amount,
            "amount_label": labels.amount_label,
            "view_url": share.action_url,
        },
        action_url=share.action_url,
        document=DocumentNeed(
            source.kind, source.id, source.version, f"{label.lower().replace(' ', '-')}-{source.number}.pdf"
        ),
        attach_pdf=share.attach_pdf,
    )


def _period(body: dict[str, Any]) -> str | None:
    start, end = body.get("start_date"), body.get("end_date")
    return f"{start} to {end}" if isinstance(start, str) and isinstance(end, str) else None


def _method(payment: PaymentInfo) -> str:
    if payment.method == "card":
        brand = (payment.card_brand or "card").title()
        return f"{brand} ending in {payment.card_last4}" if payment.card_last4 else brand
    return {"cash": "Cash", "check": "Check", "credit": "Account credit", "other": "Other"}[payment.method]


def payment_receipt(
    payment: PaymentInfo, practice: str, currency: str, recipient: str, remaining_cents: int | None
) -> Draft:
    """A receipt: amount, method (card brand and last 4 only), remaining balance if known."""
    amount = format_money(payment.amount_cents, currency)
    remaining = format_money(remaining_cents, currency) if remaining_cents is not None else None
    practice = _practice_name(practice)
    summary = f"We received your payment of {amount} ({_method(payment)})."
    if remaining is not None:
        summary += f" Remaining balance: {remaining}."
    return Draft(
        kind="payment_receipt",
        subject=f"Receipt for your payment of {amount} to {practice}",
        summary=summary,
        template="payment_receipt",
        context={
            "practice": practice,
            "recipient": recipient,
            "amount": amount,
            "method": _method(payment),
            "paid_at": payment.paid_at.date().isoformat(),
            "reference": payment.id,
            "remaining": remaining,
        },
    )


def refund_issued(refund: RefundInfo, payment: PaymentInfo, practice: str, currency: str, recipient: str) -> Draft:
    amount = format_money(refund.amount_cents, currency)
    practice = _practice_name(practice)
    card = payment.method == "card"
    summary = f"We refunded {amount} of your payment of {format_money(payment.amount_cents, currency)}"
    summary += f" to your {_method(payment)}." if card else "."
    return Draft(
        kind="refund_issued",
        subject=f"Refund of {amount} from {practice}",
        summary=summary,
        template="refund_issued",
        context={
            "practice": practice,
            "recipient": recipient,
            "amount": amount,
            "payment_amount": format_money(payment.amount_cents, currency),
            "method": _method(payment),
            "to_card": card,
            "refunded_at": refund.refunded_at.date().isoformat(),
            "reason": refund.reason,
        },
    )


def payment_failed(
    payment: PaymentInfo, reason: str, practice: str, currency: str, recipient: str, autopay: bool
) -> Draft:
    """A declined card payment; for autopay the client learns their balance is still open."""
    amount = format_money(payment.amount_cents, currency)
    practice = _practice_name(practice)
    kind = "autopay_failed" if autopay else "payment_failed"
    what = "Your automatic payment" if autopay else "Your card payment"
    return Draft(
        kind=kind,
        subject=f"{what} of {amount} to {practice} did not go through",
        summary=f"{what} of {amount} ({_method(payment)}) did not go through: {reason}.",
        template="payment_failed",
        context={
            "practice": practice,
            "recipient": recipient,
            "amount": amount,
            "what": what,
            "method": _method(payment),
            "reason": reason,
        },
    )


def autopay_disabled(practice: str, recipient: str, failed_nights: int) -> Draft:
    """Autopay was turned off after nights of failed charges: the client pays another way now."""
    practice = _practice_name(practice)
    return Draft(
        kind="autopay_disabled",
        subject=f"Automatic payments to {practice} are turned off",
        summary=f"Your automatic payment failed {failed_nights} nights in a row, so autopay is turned off.",
        template="autopay_disabled",
        context={"practice": practice, "recipient": recipient, "failed_nights": failed_nights},
    )


def plan_schedule(plan: PaymentPlanInfo, practice: str, currency: str, recipient: str) -> Draft:
    """A payment plan started: every installment's date and amount, and the card it is charged to."""
    practice = _practice_name(practice)
    card = f"{(plan.card_brand or 'card').title()} ending in {plan.card_last4}" if plan.card_last4 else "card on file"
    rows = [(i.due_date.isoformat(), format_money(i.amount_cents, currency)) for i in plan.schedule]
    total = format_money(plan.total_cents, currency)
    return Draft(
        kind="payment_plan_schedule",
        subject=f"Your payment plan with {practice}: {len(rows)} payments of your {total} balance",
        summary=f"Your payment plan of {total} is set up: {len(rows)} {plan.frequency} payments, "
        f"the first of {rows[0][1]} on {rows[0][0]}, charged to your {card}.",
        template="payment_plan_schedule",
        context={"practice": practice, "recipient": recipient, "total": total, "card": card, "rows": rows,
                 "frequency": plan.frequency},
    )  # fmt: skip


def plan_defaulted(plan: PaymentPlanInfo, practice: str, currency: str, recipient: str, failed_in_row: int) -> Draft:
    """A plan ended after failed installments: nothing more is charged, the balance is open."""
    practice = _practice_name(practice)
    return Draft(
        kind="payment_plan_defaulted",
        subject=f"Your payment plan with {practice} has ended",
        summary=f"{failed_in_row} payments of your payment plan in a row did not go through, so the plan has ended.",
        template="payment_plan_defaulted",
        context={"practice": practice, "recipient": recipient, "failed_in_row": failed_in_row,
                 "total": format_money(plan.total_cents, currency)},
    )  # fmt: skip


def card_expires_on(exp_year: int, exp_month: int) -> dt.date:
    """A card is valid through the last day of its expiry month."""
    first_of_next = dt.date(exp_year + exp_month // 12, exp_month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


def card_expiring_soon(exp_year: int, exp_month: int, today: dt.date, notice_days: int) -> bool:
    expires = card_expires_on(exp_year, exp_month)
    return today <= expires <= today + dt.timedelta(days=notice_days)


def card_expiring_cause(card_id: str, exp_year: int, exp_month: int) -> str:
    """One notice per card and expiry date: a renewed card (new expiry) gets its own."""
    return f"card-expiring:{card_id}:{exp_year:04d}-{exp_month:02d}"


def card_expiring(
    brand: str | None, last4: str | None, exp_year: int, exp_month: int, practice: str, recipient: str
) -> Draft:
    card = f"{(brand or 'card').title()} ending in {last4}" if last4 else (brand or "card").title()
    practice = _practice_name(practice)
    expires = f"{exp_month:02d}/{exp_year}"
    return Draft(
        kind="card_expiring",
        subject=f"Your card on file with {practice} expires soon",
        summary=f"Your {card} on file expires at the end of {expires}. Please add a new card to keep paying online.",
        template="card_expiring",
        context={"practice": practice, "recipient": recipient, "card": card, "expires": expires},
    )


def document_pdf_url(documents_url: str, document_id: str) -> str | None:
    """Where documents serves a PDF, built from our own setting and the document's id (None if
    the id is not a UUID). Never a URL taken from an event: that would send our token anywhere."""
    try:
        parsed = uuid.UUID(document_id)
    except ValueError:
        return None
    return f"{documents_url.rstrip('/')}/v1/documents/{parsed}/pdf"
