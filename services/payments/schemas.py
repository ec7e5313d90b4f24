"""Request bodies of the payments API (CONTRACT.md). Money is strict int cents: a float or a
string amount is a 422, never rounded."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.validation import Cents, Day, Id, Moment, Name, PositiveCents, RequestModel, Text

# A Stripe payment method id (`pm_...`; `card_...`/`src_...` from older integrations; test tokens
# such as `pm_card_visa`). Anything else is refused with 422 before it reaches Stripe's URL paths.
StripePaymentMethodId = Annotated[str, StringConstraints(pattern=r"^(pm|card|src)_[A-Za-z0-9_]{1,195}$")]


class Body(RequestModel):
    model_config = ConfigDict(extra="ignore")


class AllocationIn(Body):
    bill_id: Id
    amount_cents: PositiveCents


class PaymentIn(Body):
    client_id: Id
    bill_id: Id | None = None
    allocations: list[AllocationIn] | None = Field(default=None, min_length=1)
    payer: Literal["client", "insurance"] = "client"
    payer_name: Name | None = Field(default=None, description="the insurer, for payer insurance")
    method: Literal["card", "cash", "check", "credit", "other"]
    amount_cents: PositiveCents
    online: bool = False
    card_id: Id | None = None
    card_brand: Name | None = Field(default=None, description="offline card: the brand on the terminal slip")
    card_last4: str | None = Field(default=None, pattern=r"^\d{4}$")
    reference: Name | None = Field(default=None, description="check number, EFT or insurer check reference")
    paid_at: Moment | None = None
    notes: Text | None = None
    appointment_id: Id | None = Field(default=None, description="a prepayment for this upcoming session")
    idempotency_key: Name | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "PaymentIn":
        if self.bill_id and self.allocations:
            raise ValueError("give bill_id or allocations, not both")
        if self.online and self.method != "card":
            raise ValueError("only card payments can be online")
        if self.online and self.paid_at is not None:
            raise ValueError("paid_at of an online card payment is set by Stripe")
        if self.method == "credit" and not (self.bill_id or self.allocations):
            raise ValueError("a payment from credit needs bill_id or allocations")
        return self


class PaymentEdit(Body):
    """What may change on a recorded payment (not its amount: refund instead)."""

    paid_at: Moment | None = None
    notes: Text | None = None
    reference: Name | None = None


class RefundIn(Body):
    amount_cents: PositiveCents | None = None
    reason: Text | None = None
    bill_id: Id | None = Field(default=None, description="refund only this bill's allocation of the payment")
    idempotency_key: Name | None = None


class CreditAdjustmentIn(Body):
    amount_cents: PositiveCents
    kind: Literal["discount", "reimbursement"] = "discount"
    reason: Text = Field(min_length=1)
    idempotency_key: Name | None = None


class CardAuthorization(Body):
    signed_by: Name = Field(min_length=1)
    signed_at: Moment
    method: Name = Field(min_length=1, description="how it was given: paper, portal, verbal, ...")
    consent_version: Name | None = None


class CardIn(Body):
    stripe_payment_method_id: StripePaymentMethodId
    authorization: CardAuthorization | None = None
    holder: str = Field(
        default="client", pattern=r"^(client|billing_contact|guardian:.+)$", max_length=200,
        description="whose card: the client, a minor's billing contact, or the guardian a split bill names",
    )  # fmt: skip
    make_default: bool = False
    idempotency_key: Name | None = None


class AutopayIn(Body):
    enabled: bool
    card_id: Id | None = None


class PayLookupIn(Body):
    """What the person at the pay page knows: the practice (from the link), the bill number
    and the access code printed on the bill."""

    practice_id: str | None = Field(default=None, min_length=1, max_length=200)
    bill_number: int = Field(gt=0, le=999_999_999)
    access_code: str = Field(min_length=1, max_length=32)


class PayIntentIn(PayLookupIn):
    amount_cents: PositiveCents


class PublicPayIn(PayLookupIn):
    amount_cents: PositiveCents | None = Field(
        default=None, description="leave out to pay the balance; null is refused"
    )
    stripe_payment_method_id: StripePaymentMethodId

    @model_validator(mode="after")
    def _no_null_amount(self) -> "PublicPayIn":
        # A page that failed to parse "$50" must not end up paying the whole balance.
        if "amount_cents" in self.model_fields_set and self.amount_cents is None:
            raise ValueError("amount_cents must be a whole number of cents; leave it out to pay the balance")
        return self


class RemittanceLineIn(Body):
    session_id: Id
    amount_cents: Cents


class RemittanceIn(Body):
    payer: Name = Field(min_length=1)
    reference: Name = Field(min_length=1)
    received_at: Moment | Day
    lines: list[RemittanceLineIn] = Field(min_length=1)
    idempotency_key: Name | None = None
