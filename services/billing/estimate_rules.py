"""Good Faith Estimates (US No Surprises Act), pure: the period rule, the total, what the
estimate must carry, and when the client's bills exceed it by enough to be disputed."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from services.billing.domain import RuleViolation
from shared.events import PracticeInfo

DISPUTE_THRESHOLD_CENTS = 40_000
"""A client may dispute a bill that is $400 or more above the estimate (45 CFR 149.620)."""


@dataclass(frozen=True)
class Item:
    code: str
    description: str | None
    fee_cents: int
    quantity: int


def one_year_after(day: dt.date) -> dt.date:
    """The same date a year later (Feb 29 → Feb 28)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def check_period(start: dt.date, end: dt.date) -> None:
    """An estimate covers at most 12 months: `end` before the same date a year after `start`."""
    if end < start:
        raise RuleViolation("invalid_period", "period_end is before period_start", status=422)
    if end >= one_year_after(start):
        raise RuleViolation("invalid_period", "an estimate covers at most 12 months", status=422)


def total_cents(items: Sequence[Item]) -> int:
    if not items:
        raise RuleViolation("invalid_items", "an estimate lists at least one expected item", status=422)
    return sum(i.fee_cents * i.quantity for i in items)


def missing_fields(practice: PracticeInfo, clinician_npi: str | None) -> list[str]:
    """What the rule asks the estimate to carry that billing does not have yet."""
    missing = [f"practice {name}" for name in ("name", "address", "npi", "tax_id") if not getattr(practice, name)]
    if not clinician_npi:
        missing.append("clinician npi")
    return missing


def exceeds_by(total: int, billed: int) -> int:
    """How far the bills exceed the estimate, once they reach it plus $400 (else 0)."""
    return billed - total if billed >= total + DISPUTE_THRESHOLD_CENTS else 0


def renewal_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The next period of a yearly-renewed estimate: the day after `end`, for as long as before."""
    new_start = end + dt.timedelta(days=1)
    return new_start, new_start + (end - start)
