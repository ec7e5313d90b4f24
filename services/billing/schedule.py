"""When the practice's scheduled jobs are due, pure: no clock, no SQL. Callers pass the
practice's `today` (PracticeSettings.today: zoneinfo, so every day starts at the practice's
local midnight and a DST change moves nothing)."""

import calendar
import datetime as dt
from dataclasses import dataclass

from services.billing.domain import RuleViolation

AUTOPAY_RUN_ALLOWANCE = dt.timedelta(minutes=30)
"""How long after its start the nightly autopay run is given to charge before bills are shared."""


@dataclass(frozen=True)
class BillRun:
    """One automatic bill-creation run: its key, the sessions it bills (dated before
    `before`), and whether each session gets a bill of its own (daily) or each client one."""

    period: str
    before: dt.date
    per_session: bool


def bill_run(mode: str, today: dt.date) -> BillRun:
    """The bill-creation run due on the practice's `today`: daily bills the days before today
    (one bill per session), weekly the weeks before this Monday, monthly the months before the
    1st (one bill per client). The key is the period the run opens, so it runs once."""
    if mode == "daily":
        return BillRun(today.isoformat(), today, per_session=True)
    if mode == "weekly":
        year, week, _ = today.isocalendar()
        return BillRun(f"{year}-W{week:02d}", today - dt.timedelta(days=today.weekday()), per_session=False)
    if mode == "monthly":
        return BillRun(f"{today:%Y-%m}", today.replace(day=1), per_session=False)
    raise RuleViolation("bill_creation_manual", "bill creation is manual for this practice")


def superbill_day_in(year: int, month: int, chosen_day: int) -> dt.date:
    """The day the monthly superbill run happens in that month: the chosen day, or the last day
    of a month too short for it (31 → 30 April, 28 or 29 February)."""
    return dt.date(year, month, min(chosen_day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class SuperbillRun:
    """The monthly superbill run of the month `today` is in: it covers the month before."""

    period: str
    due: bool
    covers_from: dt.date
    covers_to: dt.date


def superbill_run(today: dt.date, chosen_day: int) -> SuperbillRun:
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    return SuperbillRun(
        period=f"{last_month_end:%Y-%m}",
        due=today >= superbill_day_in(today.year, today.month, chosen_day),
        covers_from=last_month_end.replace(day=1),
        covers_to=last_month_end,
    )


def share_before_autopay(delay: dt.timedelta, autopay_time: dt.time) -> bool:
    """True when bills created just after midnight would be shared before the night's autopay
    run (starting at `autopay_time`, given AUTOPAY_RUN_ALLOWANCE) has charged them."""
    autopay_done = dt.timedelta(hours=autopay_time.hour, minutes=autopay_time.minute) + AUTOPAY_RUN_ALLOWANCE
    return delay < autopay_done
