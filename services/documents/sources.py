"""What documents expects in `DocumentSource.body` (shared.events) from billing.

`StatementCreated.statement.body` is a `StatementBody`; `SuperbillCreated.superbill.body` is a
`SuperbillBody`. Billing builds them (`StatementBody(...).model_dump(mode="json")`); documents
parses them here and refuses a body that does not fit with `DocumentFailed` naming the field.
All money is int cents.
"""

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import Address, Insurance


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# ---- statements ---------------------------------------------------------------------------

EntryKind = Literal["charge", "payment", "refund", "credit", "adjustment", "adjustment_reversed", "cancellation"]
SIGN: dict[str, int] = {
    "charge": 1, "refund": 1, "adjustment_reversed": 1, "payment": -1, "credit": -1, "adjustment": -1,
    "cancellation": -1,
}  # fmt: skip
"""Which way each kind moves what the client owes: a charge or a refund (money given back) adds
to it; a payment, a credit (discount, credit applied), an adjustment (write-off, discount, bad debt)
or a cancelled bill takes from it; a reversed adjustment adds it back."""


class StatementEntry(Body):
    date: dt.date
    kind: EntryKind
    amount_cents: int = Field(description="signed: what the entry does to the balance (payments negative)")
    bill_number: int | None = None
    description: str | None = None
    balance_cents: int | None = Field(None, description="running balance after this entry, if billing gives it")


class AgingBuckets(Body):
    """What open bills still owe at the statement's end date, by days past due (cents)."""

    current: int = 0
    days_1_30: int = 0
    days_31_60: int = 0
    days_61_90: int = 0
    days_over_90: int = 0

    @property
    def total_cents(self) -> int:
        return self.current + self.days_1_30 + self.days_31_60 + self.days_61_90 + self.days_over_90


class PlanInstallmentDue(Body):
    due_date: dt.date
    amount_cents: int


class StatementPlan(Body):
    """A payment plan the client is on, with the installments still to come after the period."""

    total_cents: int
    frequency: Literal["weekly", "biweekly", "monthly"]
    upcoming: list[PlanInstallmentDue] = []


class StatementBody(Body):
    """Entries in date order; closing = opening + the entries' amounts (checked, so a
    statement whose figures do not add up is refused rather than printed)."""

    start_date: dt.date
    end_date: dt.date
    opening_balance_cents: int
    entries: list[StatementEntry] = []
    closing_balance_cents: int
    aging: AgingBuckets = AgingBuckets()
    payment_plans: list[StatementPlan] = []
    comments: str | None = None

    @model_validator(mode="after")
    def _figures_add_up(self) -> "StatementBody":
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        balance = self.opening_balance_cents
        for i, entry in enumerate(self.entries):
            if entry.amount_cents * SIGN[entry.kind] < 0:
                raise ValueError(f"entries[{i}].amount_cents has the wrong sign for a {entry.kind}")
            balance += entry.amount_cents
            if entry.balance_cents is not None and entry.balance_cents != balance:
                raise ValueError(f"entries[{i}].balance_cents {entry.balance_cents} should be {balance}")
        if balance != self.closing_balance_cents:
            raise ValueError(
                f"closing_balance_cents {self.closing_balance_cents} is not opening balance "
                f"{self.opening_balance_cents} plus the entries ({balance - self.opening_balance_cents})"
            )
        return self


# ---- superbills ---------------------------------------------------------------------------


class Provider(Body):
    """A clinician as CMS-1500 names them (boxes 24J, 31, 33)."""

    name: str
    credentials: str | None = None
    npi: str | None = None
    license_number: str | None = None
    taxonomy_code: str | None = None


class SuperbillLine(Body):
    """One service of one session: a CMS-1500 box 24 line."""

    session_id: str
    date_of_service: dt.date
    place_of_service: str
    code: str
    modifiers: list[str] = []
    description: str | None = None
    units: int = 1
    diagnosis_codes: list[str] = []
    fee_cents: int
    paid_cents: int = 0
    provider: Provider
    supervisor: Provider | None = Field(default=None, description="set when the session was supervised")


class ResponsibleParty(Body):
    """Who is responsible for a minor patient (the billing-contact guardian)."""

    name: str
    relationship: str | None = None
    phone: str | None = None
    address: Address | None = None


PayTo = Literal["clinic", "provider", "client", "none"]


class SuperbillBody(Body):
    patient_date_of_birth: dt.date | None = None
    patient_is_minor: bool = False
    responsible_party: ResponsibleParty | None = None
    insurance: Insurance | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    lines: list[SuperbillLine] = []
    pay_to: PayTo = Field("client", description="who the insurer should pay; 'none' leaves it off")

    @property
    def total_fee_cents(self) -> int:
        return sum(line.fee_cents for line in self.lines)

    @property
    def total_paid_cents(self) -> int:
        return sum(line.paid_cents for line in self.lines)


# ---- Good Faith Estimates -------------------------------------------------------------------


class EstimateClinician(Body):
    name: str = Field(min_length=1)
    credentials: str | None = None
    npi: str = Field(min_length=10, max_length=10)


class EstimateItem(Body):
    code: str = Field(min_length=1)
    description: str | None = None
    quantity: int = Field(ge=1)
    fee_cents: int = Field(ge=0)
    total_cents: int = Field(ge=0)

    @model_validator(mode="after")
    def _adds_up(self) -> "EstimateItem":
        if self.total_cents != self.fee_cents * self.quantity:
            raise ValueError("total_cents is not fee_cents × quantity")
        return self


class GoodFaithEstimateBody(Body):
    """What the No Surprises Act asks an estimate to carry (with the practice from the source):
    the clinician and NPI, the patient's date of birth, each item, the total, the period."""

    start_date: dt.date
    end_date: dt.date
    patient_date_of_birth: dt.date
    clinician: EstimateClinician
    items: list[EstimateItem] = Field(min_length=1)
    total_cents: int
    diagnosis_codes: list[str] = []
    comments: str | None = None
    dispute_threshold_cents: int = 40_000

    @model_validator(mode="after")
    def _total(self) -> "GoodFaithEstimateBody":
        if self.total_cents != sum(i.total_cents for i in self.items):
            raise ValueError("total_cents is not the sum of the items")
        return self
