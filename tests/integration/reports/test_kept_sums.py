"""What the consumer keeps beside the facts (a bill line's clinician, revenue per month): a bill
whose session arrives after it moves to the session's clinician, and a range that cuts a month
reads that month's days from the lines, the rest from the month sums."""

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from shared.events import BillCreated, BillPaid, Session, SessionCompleted
from shared.topics import BILLING, SCHEDULING
from tests.conftest import eventually
from tests.integration.reports.conftest import Reports
from tests.integration.reports.month import SESSIONS, BillBook, at, envelope


def session_event(sid: str, practice_id: str) -> dict[str, Any]:
    cid, kid, code, fee, dos = SESSIONS[sid]
    session = Session(id=sid, client_id=cid, clinician_id=kid, date_of_service=dt.date.fromisoformat(dos),
                      starts_at=at(f"{dos}T14:00:00+00:00"), duration_minutes=53, place_of_service="11",
                      payer="self_pay", services=[{"code": code, "units": 1, "fee_cents": fee}])  # type: ignore[list-item]  # fmt: skip
    return envelope(SessionCompleted(session=session), at(f"{dos}T15:00:00+00:00"), practice_id)


async def test_a_session_after_its_bill_and_a_range_that_cuts_a_month(
    reports: Reports, publish_to: Callable[..., Any]
) -> None:
    practice = f"practice-{uuid.uuid4().hex[:8]}"
    book = BillBook()
    # B1: s1 (k1, 150.00) issued Oct 1, paid 150.00 on Oct 2; B3: s3 (k2, 120.00) issued Oct 5, open.
    b1 = book.create("b1", 1, "s1", "2026-10-01", "2026-10-15")
    await publish_to(BILLING, "c1", envelope(BillCreated(bill=b1), at("2026-10-01T16:00:00+00:00"), practice))
    paid = book.apply("b1", "p1", "payment", "client", "card", 15000, "2026-10-02T15:00:00+00:00")
    await publish_to(BILLING, "c1", envelope(BillPaid(bill=paid), at("2026-10-02T15:00:01+00:00"), practice))
    b3 = book.create("b3", 2, "s3", "2026-10-05", "2026-10-19")
    await publish_to(BILLING, "c2", envelope(BillCreated(bill=b3), at("2026-10-05T16:00:00+00:00"), practice))
    await publish_to(SCHEDULING, "c2", session_event("s3", practice))  # s3 known; s1 not yet

    def rows(report: dict[str, Any]) -> list[tuple[Any, int, int, int]]:
        return [(r["key"], r["billed_cents"], r["collected_cents"], r["outstanding_cents"]) for r in report["rows"]]

    async def by_clinician() -> list[tuple[Any, int, int, int]]:
        return rows(await reports.get("/v1/reports/revenue", practice, group_by="clinician"))

    before = [("k2", 12000, 0, 12000), (None, 15000, 15000, 0)]
    await eventually(lambda: _equals(by_clinician(), before), timeout=30)
    await publish_to(SCHEDULING, "c1", session_event("s1", practice))
    after = [("k1", 15000, 15000, 0), ("k2", 12000, 0, 12000)]
    await eventually(lambda: _equals(by_clinician(), after), timeout=30)

    revenue = "/v1/reports/revenue"
    october = await reports.get(revenue, practice, group_by="clinician", **{"from": "2026-10-01", "to": "2026-10-31"})
    assert rows(october) == after  # the whole month: its sums
    cut = await reports.get(revenue, practice, group_by="month", **{"from": "2026-10-03", "to": "2026-12-31"})
    assert rows(cut) == [("2026-10", 12000, 0, 12000)]  # Oct 3-31 from the lines: B3 only
    early = await reports.get(revenue, practice, group_by="month", to="2026-10-04")
    assert rows(early) == [("2026-10", 15000, 15000, 0)]


async def _equals(got: Any, want: Any) -> bool:
    return await got == want
