"""The Kafka contract in code (CONTRACT.md): one envelope, one pydantic model per event.

Inbound models accept exactly what upstream publishes (examples in tests/fixtures/events);
changing them so that an example no longer validates is a breaking change. Each model is
registered by its `event_type`; `schema_version` lets a v2 live beside v1 later.
"""

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# ---- inbound: scheduling.events -------------------------------------------------------


class Address(Model):
    line1: str
    line2: str | None = None
    city: str
    state: str
    postal_code: str


class Guardian(Model):
    id: str | None = None  # stable across ClientUpserted; split bills name a guardian by it (else by email)
    name: str
    email: str | None = None
    phone: str | None = None
    relationship: str
    is_billing_contact: bool = False


class Insurance(Model):
    payer_name: str
    payer_id: str | None = None
    member_id: str
    group_number: str | None = None
    subscriber_name: str | None = None
    subscriber_date_of_birth: dt.date | None = None
    relationship_to_subscriber: str | None = None


class Client(Model):
    id: str = Field(min_length=1)
    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None
    date_of_birth: dt.date
    address: Address
    is_minor: bool = False
    guardians: list[Guardian] = []
    insurance: Insurance | None = None
    household_id: str | None = None


class ClientUpserted(Model):
    client: Client


class Clinician(Model):
    id: str = Field(min_length=1)
    first_name: str
    last_name: str
    credentials: str
    npi: str
    license_number: str | None = None
    taxonomy_code: str | None = None


class ClinicianUpserted(Model):
    clinician: Clinician


class SessionService(Model):
    code: str
    description: str | None = None
    modifiers: list[str] = []
    units: int = Field(default=1, ge=1)
    fee_cents: int = Field(ge=0)
    billable: bool = True


Attendance = Literal["attended", "late_cancel", "no_show"]


class Session(Model):
    id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    clinician_id: str
    supervisor_clinician_id: str | None = None
    date_of_service: dt.date
    starts_at: AwareDatetime
    duration_minutes: int = Field(ge=0)
    place_of_service: str
    diagnosis_codes: list[str] = []
    payer: str = Field(min_length=1)
    attendance: Attendance = "attended"
    services: list[SessionService] = []


class SessionCompleted(Model):
    session: Session


class SessionVoided(Model):
    session_id: str = Field(min_length=1)
    reason: str


# ---- billing.events ---------------------------------------------------------------------


class Party(Model):
    """Who a document or email is addressed to (the billing contact for a minor)."""

    name: str
    email: str | None = None
    address: Address | None = None


class PracticeInfo(Model):
    name: str = ""
    address: Address | None = None
    phone: str | None = None
    tax_id: str | None = None
    npi: str | None = None
    timezone: str = "America/New_York"
    currency: str = "USD"
    footer_comment: str | None = None


class BillLine(Model):
    session_id: str
    date_of_service: dt.date
    code: str
    description: str | None = None
    modifiers: list[str] = []
    units: int = 1
    amount_cents: int
    client_owes_cents: int
    insurance_owes_cents: int
    voided: bool = False


class BillPaymentLine(Model):
    """A payment or refund as applied to one bill."""

    payment_id: str
    kind: Literal["payment", "refund"]
    payer: Literal["client", "insurance"]
    method: str
    amount_cents: int
    occurred_at: AwareDatetime


AdjustmentKind = Literal["write_off", "discount", "bad_debt"]


class BillAdjustment(Model):
    """An amount taken off what a payer owes on a bill without moving money (a write-off,
    discount or bad debt); `reversed_at` set once it was undone."""

    id: str
    payer: Literal["client", "insurance"] = "client"
    amount_cents: int = Field(gt=0)
    kind: AdjustmentKind
    reason: str
    created_at: AwareDatetime
    reversed_at: AwareDatetime | None = None


class BillSnapshot(Model):
    """Everything a bill shows, so consumers never call billing back. `balance_cents` =
    total − paid − adjusted; `client_owes_cents`/`insurance_owes_cents` are each payer's part
    of that balance (adjustments already taken off)."""

    id: str
    number: int
    client_id: str
    status: Literal["open", "paid", "closed", "cancelled"]
    responsibility: Literal["client", "insurance"]
    lines: list[BillLine]
    total_cents: int
    client_owes_cents: int
    insurance_owes_cents: int
    paid_cents: int
    balance_cents: int
    issued_on: dt.date
    due_date: dt.date
    comments: str | None = None
    access_code: str
    pay_url: str
    bill_to: Party
    patient: Party
    practice: PracticeInfo
    payments: list[BillPaymentLine] = []
    adjusted_cents: int = 0
    adjustments: list[BillAdjustment] = []
    split_group_id: str | None = None  # the bills of one split share it
    split_percent: Decimal | None = None
    party: str | None = None  # a split bill's payer: "client" or "guardian:<id>"
    version: int = 1

    def adjusted_by(self, payer: str) -> int:
        """What standing adjustments took off this payer's share."""
        return sum(a.amount_cents for a in self.adjustments if a.payer == payer and a.reversed_at is None)


class BillEvent(Model):
    bill: BillSnapshot


class BillCreated(BillEvent):
    pass


class BillUpdated(BillEvent):
    """The bill's figures or lines changed (payment, refund, void): re-render it."""


class BillPaid(BillEvent):
    pass


class BillCancelled(BillEvent):
    reason: str | None = None


class BillAdjusted(Model):
    """An adjustment was made on a bill (the new figures follow in BillUpdated)."""

    bill_id: str
    client_id: str
    adjustment: BillAdjustment


class BillAdjustmentReversed(Model):
    """An adjustment was undone (the new figures follow in BillUpdated)."""

    bill_id: str
    client_id: str
    adjustment: BillAdjustment


class ShareDelivery(Model):
    recipient: Party
    attach_pdf: bool = True
    email: bool = True
    action_url: str | None = None


class BillShared(BillEvent):
    share: ShareDelivery


class AllocationRejected(Model):
    """A payment reached a bill that cannot take it (cancelled meanwhile): payments makes
    the amount client credit, so it never vanishes."""

    payment_id: str
    bill_id: str
    client_id: str
    amount_cents: int
    reason: str


class PracticeAutomationChanged(Model):
    """A practice's billing settings that other services act on (payments: when and how
    autopay runs). Key = practice_id; the latest event wins."""

    timezone: str
    currency: str = "USD"
    autopay_time: dt.time = dt.time(0, 30)
    autopay_skip_insurance_pending: bool = False


class DocumentSource(Model):
    """A statement, superbill or Good Faith Estimate as billing built it; `body` holds its kind's fields."""

    id: str
    number: int
    client_id: str
    kind: Literal["statement", "superbill", "good_faith_estimate"]
    issued_on: dt.date
    bill_to: Party
    patient: Party
    practice: PracticeInfo
    body: dict[str, Any]
    version: int = 1


class StatementCreated(Model):
    statement: DocumentSource


class StatementShared(Model):
    statement: DocumentSource
    share: ShareDelivery


class SuperbillCreated(Model):
    superbill: DocumentSource


class SuperbillShared(Model):
    superbill: DocumentSource
    share: ShareDelivery


class GoodFaithEstimateCreated(Model):
    estimate: DocumentSource


class GoodFaithEstimateShared(Model):
    estimate: DocumentSource
    share: ShareDelivery


class GoodFaithEstimateExceeded(Model):
    """The client's bills in the estimate's period first reached the estimate plus $400: the
    client may dispute them (No Surprises Act)."""

    estimate_id: str
    client_id: str
    number: int
    total_cents: int
    billed_cents: int
    exceeds_by_cents: int


class SharedSource(Model):
    kind: Literal["bill", "statement", "superbill", "good_faith_estimate"]
    id: str


class SharesRecorded(Model):
    """What billing had shared with a client before documents kept its own list of shared
    sources: staged once by a billing data migration, so documents lets the client see those
    documents without a replay of billing.events. Nothing is emailed for it."""

    client_id: str
    sources: list[SharedSource]


# ---- payments.events --------------------------------------------------------------------


class Allocation(Model):
    bill_id: str
    amount_cents: int = Field(gt=0)
    balance_after_cents: int | None = None
    """What the payer still owes on the bill once this payment is in (payments computes it
    under the bill lock, so two quick payments each see the other): receipts quote it."""


class PaymentInfo(Model):
    id: str
    client_id: str
    payer: Literal["client", "insurance"]
    method: Literal["card", "cash", "check", "credit", "other"]
    amount_cents: int
    status: str
    paid_at: AwareDatetime
    online: bool = False
    card_brand: str | None = None
    card_last4: str | None = None
    reference: str | None = None


class PaymentRecorded(Model):
    payment: PaymentInfo
    allocations: list[Allocation] = []
    credit_cents: int = 0


class PaymentFailed(Model):
    payment: PaymentInfo
    bill_id: str | None = None
    reason: str
    autopay: bool = False  # a scheduled autopay charge (notifications: "autopay failed" email)


class RefundInfo(Model):
    id: str
    payment_id: str
    client_id: str
    amount_cents: int
    reason: str | None = None
    refunded_at: AwareDatetime


class PaymentRefunded(Model):
    refund: RefundInfo
    payment: PaymentInfo
    allocations: list[Allocation] = []
    credit_cents: int = 0


class CreditChanged(Model):
    client_id: str
    entry_id: str
    kind: str
    amount_cents: int
    balance_cents: int
    reason: str | None = None


class CardAuthorized(Model):
    client_id: str
    card_id: str
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


class CardRemoved(Model):
    """A card taken off file: never charged again, no more expiry notices for it."""

    client_id: str
    card_id: str


class AutopayDisabled(Model):
    """Autopay turned off for a client by the system (e.g. after consecutive failed nights)."""

    client_id: str
    card_id: str | None = None
    reason: str
    failed_nights: int = 0


class PlanInstallment(Model):
    due_date: dt.date
    amount_cents: int
    status: Literal["scheduled", "paid", "failed", "skipped"]
    payment_id: str | None = None


class PaymentPlanInfo(Model):
    id: str
    client_id: str
    status: Literal["active", "completed", "defaulted", "cancelled"]
    total_cents: int
    bill_ids: list[str]
    frequency: Literal["weekly", "biweekly", "monthly"]
    card_brand: str | None = None
    card_last4: str | None = None
    schedule: list[PlanInstallment]


class PaymentPlanCreated(Model):
    """A payment plan started: notifications emails the client its schedule."""

    plan: PaymentPlanInfo


class PaymentPlanDefaulted(Model):
    """Installments failed PLAN_MAX_FAILED_IN_ROW times in a row: nothing more is charged, the
    plan's bills are open again for the client (and plain autopay); the client is emailed."""

    plan: PaymentPlanInfo
    failed_in_row: int


class PaymentPlanCompleted(Model):
    """All of the plan's bills are paid (by the plan or any other way); what was left is skipped."""

    plan: PaymentPlanInfo


class PaymentPlanCancelled(Model):
    """Staff cancelled the plan: its remaining installments are skipped."""

    plan: PaymentPlanInfo


# ---- documents.events -------------------------------------------------------------------


DocumentKind = Literal["bill", "statement", "superbill", "good_faith_estimate"]


class DocumentRendered(Model):
    document_id: str
    kind: DocumentKind
    source_id: str
    client_id: str
    version: int
    pages: int
    sha256: str
    url: str


class DocumentFailed(Model):
    kind: DocumentKind
    source_id: str
    client_id: str
    version: int
    reason: str
    document_id: str | None = None


# ---- notifications.events, portal.notifications ------------------------------------------


class EmailSent(Model):
    email_id: str
    client_id: str
    kind: str
    to: str
    subject: str


class EmailFailed(Model):
    email_id: str
    client_id: str
    kind: str
    to: str | None = None
    subject: str
    reason: str


class Recipient(Model):
    name: str
    email: str | None = None


class ClientNotification(Model):
    notification_id: str
    client_id: str
    recipient: Recipient
    kind: str
    subject: str
    body_text: str
    action_url: str | None = None
    document_id: str | None = None


# ---- every service's own topic: the audit trail --------------------------------------------


class AuditResource(Model):
    kind: str
    id: str | None = None


class AuditRecorded(Model):
    """Who did what: a write (by staff, a client, the pay page, automation) or a PDF download,
    staged through the service's outbox in the same transaction as the action (shared.audit).
    `actor` is the token's `sub` (or `automation`, `pay_page`, `reconciler`, `stripe`); reports
    keeps them append-only."""

    actor: str
    role: str  # staff | client | pay_page | automation | webhook
    service: str
    action: str
    resource: AuditResource
    client_id: str | None = None
    ip: str | None = None


EVENT_MODELS: dict[str, type[Model]] = {
    model.__name__: model
    for model in (
        ClientUpserted, ClinicianUpserted, SessionCompleted, SessionVoided,
        BillCreated, BillUpdated, BillPaid, BillCancelled, BillShared, AllocationRejected,
        BillAdjusted, BillAdjustmentReversed,
        StatementCreated, StatementShared, SuperbillCreated, SuperbillShared,
        GoodFaithEstimateCreated, GoodFaithEstimateShared, GoodFaithEstimateExceeded, SharesRecorded,
        PaymentRecorded, PaymentFailed, PaymentRefunded, CreditChanged, CardAuthorized, CardRemoved,
        PracticeAutomationChanged, AutopayDisabled,
        PaymentPlanCreated, PaymentPlanDefaulted, PaymentPlanCompleted, PaymentPlanCancelled,
        DocumentRendered, DocumentFailed, EmailSent, EmailFailed, ClientNotification,
        AuditRecorded,
    )
}  # fmt: skip

D = TypeVar("D", bound=Model)


class Envelope(BaseModel, Generic[D]):
    """One Kafka message value. Key = client_id; headers repeat event-type and event-id."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(min_length=1)
    event_type: str
    occurred_at: AwareDatetime
    practice_id: str = Field(min_length=1)
    schema_version: int = SCHEMA_VERSION
    data: D


_ENVELOPES: dict[str, type[Envelope[Any]]] = {name: Envelope[model] for name, model in EVENT_MODELS.items()}


class BadEvent(ValueError):
    """A message that can never be processed: goes to the DLQ with this reason."""


def parse_event(raw: bytes | str, event_type: str | None = None) -> Envelope[Any]:
    """Validate a message value into a typed envelope, or raise BadEvent saying why.
    `event_type`: the message's `event-type` header, if any. With it the envelope is validated
    straight from the bytes in one pass (pydantic's own JSON parser, no Python dict in between:
    the ingest hot path); anything that pass does not accept as exactly that type goes the
    general way below, which names what is wrong."""
    envelope_type = _ENVELOPES.get(event_type) if event_type else None
    if envelope_type is not None and _NUL_ESCAPE not in (raw if isinstance(raw, bytes) else raw.encode()):
        try:
            envelope = envelope_type.model_validate_json(raw)
        except ValidationError:
            pass
        else:
            if envelope.event_type == event_type and envelope.schema_version == SCHEMA_VERSION:
                return envelope
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise BadEvent(f"invalid envelope: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise BadEvent("invalid envelope: not a JSON object")
    if _NUL_ESCAPE in (raw if isinstance(raw, bytes) else raw.encode()) and _holds_nul(doc):
        raise BadEvent("invalid envelope: contains a NUL character")
    event_type = doc.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise BadEvent("invalid envelope: event_type: Field required")
    envelope_type = _ENVELOPES.get(event_type)
    if envelope_type is None:
        raise BadEvent(f"unknown event_type {event_type!r}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise BadEvent(f"unsupported schema_version {doc.get('schema_version')!r} for {event_type}")
    try:
        return envelope_type.model_validate(doc)
    except ValidationError as exc:
        raise BadEvent(f"invalid {event_type}: {_brief(exc)}") from exc


_NUL_ESCAPE = b"\\u0000"  # how JSON spells a NUL inside a string (a raw NUL is not valid JSON)


def _holds_nul(value: Any) -> bool:
    """Postgres cannot store NUL in text, and nothing legitimate carries one: such an event is
    refused whole (only walked when the raw bytes hold the escape, so the hot path pays nothing)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def new_envelope(practice_id: str, data: Model, *, occurred_at: dt.datetime | None = None) -> Envelope[Any]:
    """A fresh outbound envelope; the event type is the data model's name."""
    return Envelope[type(data)](  # type: ignore[misc]
        event_id=str(uuid.uuid4()),
        event_type=type(data).__name__,
        occurred_at=occurred_at or dt.datetime.now(dt.UTC),
        practice_id=practice_id,
        schema_version=SCHEMA_VERSION,
        data=data,
    )


def _brief(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)
