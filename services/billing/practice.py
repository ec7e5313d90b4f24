"""A practice's bill settings (`GET/PUT /v1/settings`): stored per practice in billing and
read when a bill is created, so a change applies to bills created afterwards."""

import datetime as dt
import zoneinfo
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing import domain, schedule
from shared.events import Address, PracticeAutomationChanged, PracticeInfo
from shared.validation import Cents, Day, Name, Percent, RequestModel, Text, TimeOfDay

DueDays = Literal[15, 30, 45, 60, 90, 120]


class PracticeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    address: Address | None = None
    phone: str | None = None
    tax_id: str | None = None
    npi: str | None = None
    timezone: str = "America/New_York"
    currency: str = Field(default="USD", min_length=3, max_length=3)
    default_due_days: DueDays = 30
    default_due_date: dt.date | None = Field(
        default=None, description="a fixed due date for new bills; overrides default_due_days while in the future"
    )
    service_description: Literal["code", "custom"] = "code"
    custom_service_description: str | None = None
    footer_comment: str | None = None
    attach_pdf: bool = Field(default=True, description="attach the PDF to emails; false = portal only")
    bill_creation: Literal["manual", "daily", "weekly", "monthly"] = "manual"
    superbill_creation_day: int = Field(
        default=1, ge=1, le=31, description="day of the monthly superbill run; 29-31: the last day of shorter months"
    )
    auto_share_bills: bool = False
    auto_share_statements: bool = False
    auto_share_superbills: bool = False
    auto_share_delay_hours: int = Field(default=0, ge=0, le=24 * 30)
    autopay_time: TimeOfDay = Field(
        default=dt.time(0, 30), description="practice-local time of the nightly autopay run"
    )
    autopay_skip_insurance_pending: bool = Field(
        default=False, description="autopay leaves a bill alone while its insurance portion is unpaid"
    )
    no_show_fee_cents: int = Field(default=0, ge=0)
    late_cancel_fee_cents: int = Field(default=0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def info(self) -> PracticeInfo:
        """What a bill or statement prints about the practice."""
        return PracticeInfo(
            name=self.name,
            address=self.address,
            phone=self.phone,
            tax_id=self.tax_id,
            npi=self.npi,
            timezone=self.timezone,
            currency=self.currency,
            footer_comment=self.footer_comment,
        )

    def today(self, now: dt.datetime) -> dt.date:
        """The practice's calendar date at `now` (bills are issued on the practice's day)."""
        return now.astimezone(zoneinfo.ZoneInfo(self.timezone)).date()

    def setting_warnings(self) -> list["SettingsWarning"]:
        """Combinations that work but probably not as the practice means them."""
        out = []
        delay = dt.timedelta(hours=self.auto_share_delay_hours)
        if (
            self.auto_share_bills
            and self.bill_creation != "manual"
            and schedule.share_before_autopay(delay, self.autopay_time)
        ):
            out.append(
                SettingsWarning(
                    code="auto_share_before_autopay",
                    message=f"bills are shared {self.auto_share_delay_hours} h after creation, before the nightly "
                    f"autopay run at {self.autopay_time:%H:%M} has charged them; autopay clients would get a bill "
                    "they are about to be charged for. Use a delay of at least "
                    f"{_hours_needed(self.autopay_time)} h.",
                )
            )
        return out

    def automation(self) -> PracticeAutomationChanged:
        """What payments needs to know to run autopay for this practice."""
        return PracticeAutomationChanged(
            timezone=self.timezone,
            currency=self.currency,
            autopay_time=self.autopay_time,
            autopay_skip_insurance_pending=self.autopay_skip_insurance_pending,
        )


class SettingsWarning(BaseModel):
    code: str
    message: str


class SettingsView(PracticeSettings):
    """GET/PUT /v1/settings answer: the settings and what in them deserves a second look."""

    model_config = ConfigDict(extra="ignore")

    warnings: list[SettingsWarning] = []

    @classmethod
    def of(cls, settings: PracticeSettings) -> "SettingsView":
        return cls.model_validate(settings.model_dump() | {"warnings": settings.setting_warnings()})


def _hours_needed(autopay_time: dt.time) -> int:
    hours = 0
    while schedule.share_before_autopay(dt.timedelta(hours=hours), autopay_time):
        hours += 1
    return hours


class AddressIn(Address):
    model_config = ConfigDict(str_max_length=200)


class PracticeSettingsUpdate(RequestModel):
    """PUT body: the fields sent replace the stored ones; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: AddressIn | None = None
    phone: Name | None = None
    tax_id: Name | None = None
    npi: Name | None = None
    timezone: Name | None = None
    currency: str | None = Field(default=None, max_length=3)
    default_due_days: DueDays | None = None
    default_due_date: Day | None = None
    service_description: Literal["code", "custom"] | None = None
    custom_service_description: Text | None = None
    footer_comment: Text | None = None
    attach_pdf: bool | None = None
    bill_creation: Literal["manual", "daily", "weekly", "monthly"] | None = None
    superbill_creation_day: int | None = Field(default=None, le=31)
    auto_share_bills: bool | None = None
    auto_share_statements: bool | None = None
    auto_share_superbills: bool | None = None
    auto_share_delay_hours: int | None = Field(default=None, le=24 * 30)
    autopay_time: TimeOfDay | None = None
    autopay_skip_insurance_pending: bool | None = None
    warnings: list[Any] | None = Field(default=None, description="ignored: computed by the server")
    no_show_fee_cents: Cents | None = None
    late_cancel_fee_cents: Cents | None = None

    def apply_to(self, current: PracticeSettings) -> PracticeSettings:
        merged = current.model_dump() | self.model_dump(include=self.model_fields_set - {"warnings"})
        return PracticeSettings.model_validate(merged)


class SplitPartIn(RequestModel):
    """One payer of a split: `client` or `guardian:<id>` (the guardian's id, else their email)."""

    model_config = ConfigDict(extra="forbid")

    party: str = Field(pattern=r"^(client|guardian:.+)$", max_length=200)
    percent: Percent = Field(gt=0)


class BillingProfile(RequestModel):
    """A client's bill defaults and delivery (`/v1/clients/{client_id}/billing-profile`)."""

    model_config = ConfigDict(extra="forbid")

    default_responsibility: Literal["client", "insurance"] = "client"
    copay_cents: Cents | None = None
    coinsurance_percent: Percent | None = None
    automatic_superbills: bool = False
    delivery: Literal["email", "portal_only"] = "email"
    split: list[SplitPartIn] | None = Field(
        default=None, description="default split of client-responsibility bills, manual and automatic"
    )

    @model_validator(mode="after")
    def _one_split(self) -> "BillingProfile":
        if self.copay_cents is not None and self.coinsurance_percent is not None:
            raise ValueError("give a copay or a coinsurance, not both")
        if self.split:
            try:
                domain.check_split(self.split_parts())
            except domain.RuleViolation as exc:
                raise ValueError(exc.message) from exc
        return self

    def split_parts(self) -> list[domain.SplitPart]:
        return [domain.SplitPart(p.party, p.percent) for p in self.split or []]
