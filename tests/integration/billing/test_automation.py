"""Automatic bill and superbill creation and auto-share, run on demand as they would have run
at `as_of`: across month ends, a leap day and DST changes; concurrent runs, a second replica
and a crashed run create each bill and superbill once."""

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from services.billing import automation
from services.billing.app import build
from shared import topics
from tests.conftest import eventually, example_event, isolated_topics
from tests.integration.billing.conftest import Practice, _all_in
from tests.integration.billing.test_split_bills import FATHER, MOTHER, SPLIT
from tests.integration.billing.test_superbills import PRACTICE_INFO

pytestmark = pytest.mark.integration


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_bill_creation_bills_each_client_once_per_period(practice) -> None:
    a, b = uid("client"), uid("client")
    await practice.client(a)
    await practice.client(b, minor=True)
    sessions = {a: [uid("s"), uid("s")], b: [uid("s")]}
    await practice.session(sessions[a][0], a, date_of_service="2026-11-02")
    await practice.session(sessions[a][1], a, date_of_service="2026-11-04")
    await practice.session(sessions[b][0], b, date_of_service="2026-11-05")
    current = uid("s")
    await practice.session(current, b, date_of_service="2026-11-10")  # in the run's own week: not yet
    await eventually(lambda: _count(practice.unbilled_ids(), 4))

    r = await practice.post("/v1/automation/run", {"job": "bill_creation"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "bill_creation_manual"
    await practice.put("/v1/settings", {"bill_creation": "weekly"})
    as_of = "2026-11-11T15:00:00Z"  # a Wednesday: bills the weeks before Monday 2026-11-09
    r = await practice.post("/v1/automation/run", {"job": "bill_creation", "as_of": as_of})
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["period"] == "2026-W46" and run["already_ran"] is False
    assert sorted(x["client_id"] for x in run["bills"]) == sorted([a, b])
    assert await practice.unbilled_ids() == [current]
    bill_a = await practice.bill(next(x["bill_id"] for x in run["bills"] if x["client_id"] == a))
    assert sorted(ln["session_id"] for ln in bill_a["lines"]) == sorted(sessions[a])

    again = await practice.post("/v1/automation/run", {"job": "bill_creation", "as_of": "2026-11-13T15:00:00Z"})
    assert again.json()["already_ran"] is True
    r = await practice.get("/v1/bills")
    assert len(r.json()["items"]) == 2


async def test_auto_share_shares_new_bills_after_the_delay(practice) -> None:
    cid, sid = uid("client"), uid("sess")
    await practice.put("/v1/settings", {"auto_share_bills": True, "auto_share_delay_hours": 2})
    await practice.client(cid)
    await practice.session(sid, cid)
    bill = await practice.billed(cid, [sid])
    assert bill["share_scheduled_at"] and bill["shared"] is False
    scheduled = dt.datetime.fromisoformat(bill["share_scheduled_at"])
    early = (scheduled - dt.timedelta(minutes=1)).isoformat()
    r = await practice.post("/v1/automation/run", {"job": "auto_share", "as_of": early})
    assert r.json() == {"job": "auto_share", "shared": 0}
    r = await practice.post("/v1/automation/run", {"job": "auto_share", "as_of": scheduled.isoformat()})
    assert r.json() == {"job": "auto_share", "shared": 1}
    shared = await practice.bill(bill["id"])
    assert shared["shared"] is True and shared["share_scheduled_at"] is None


async def test_auto_share_shares_new_statements_and_superbills_after_the_delay(practice) -> None:
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    await practice.put(
        "/v1/settings", {**PRACTICE_INFO, "auto_share_statements": True, "auto_share_superbills": True,
                         "auto_share_delay_hours": 3},
    )  # fmt: skip
    cid, sid = uid("client"), uid("sess")
    await practice.client(cid)
    await practice.session(sid, cid, example="insurance-telehealth", date_of_service="2026-11-03")
    await practice.billed(cid, [sid])
    r = await practice.post("/v1/statements", {"client_id": cid, "start_date": "2026-11-01", "end_date": "2026-11-30"})
    assert r.status_code == 201, r.text
    statement = r.json()
    r = await practice.post("/v1/superbills", {"client_id": cid, "session_ids": [sid]})
    assert r.status_code == 201, r.text
    superbill = r.json()
    for doc in (statement, superbill):
        scheduled = dt.datetime.fromisoformat(doc["share_scheduled_at"])
        assert scheduled == dt.datetime.fromisoformat(doc["created_at"]) + dt.timedelta(hours=3)
        assert doc["shared"] is False
    latest = max(dt.datetime.fromisoformat(d["share_scheduled_at"]) for d in (statement, superbill))
    early = min(dt.datetime.fromisoformat(d["share_scheduled_at"]) for d in (statement, superbill))
    before = await run(practice, "auto_share", (early - dt.timedelta(minutes=1)).isoformat())
    assert before == {"job": "auto_share", "shared": 0}
    assert await run(practice, "auto_share", latest.isoformat()) == {"job": "auto_share", "shared": 2}
    for path in (f"/v1/statements/{statement['id']}", f"/v1/superbills/{superbill['id']}"):
        shared = (await practice.get(path)).json()
        assert shared["shared"] is True and shared["share_scheduled_at"] is None
    events = await practice.events(lambda es: {"StatementShared", "SuperbillShared"} <= {e["event_type"] for e in es})
    assert [e["event_type"] for e in events].count("StatementShared") == 1
    assert [e["event_type"] for e in events].count("SuperbillShared") == 1


async def _count(ids, n: int) -> bool:
    return len(await ids) == n


async def run(practice: Practice, job: str, as_of: str) -> dict[str, Any]:
    r = await practice.post("/v1/automation/run", {"job": job, "as_of": as_of})
    assert r.status_code == 200, r.text
    return r.json()


async def test_daily_bills_each_session_of_the_day_before_in_practice_time_across_dst(practice) -> None:
    """New York springs forward on 2026-03-08: 04:30Z is 23:30 the day before in winter, 00:30 after."""
    await practice.put("/v1/settings", {"bill_creation": "daily", "default_due_days": 15, "auto_share_bills": True,
                                        "auto_share_delay_hours": 2})  # fmt: skip
    cid = uid("client")
    await practice.client(cid)
    await practice.put(
        f"/v1/clients/{cid}/billing-profile", {"default_responsibility": "insurance", "copay_cents": 2500}
    )
    first, second, sunday = uid("s"), uid("s"), uid("s")
    await practice.session(first, cid, date_of_service="2026-03-07")
    await practice.session(second, cid, date_of_service="2026-03-07")
    await practice.session(sunday, cid, date_of_service="2026-03-08")
    await eventually(lambda: _count(practice.unbilled_ids(), 3))

    early = await run(practice, "bill_creation", "2026-03-08T04:30:00Z")  # 23:30 EST on the 7th
    assert early["period"] == "2026-03-07" and early["bills"] == []
    night = await run(practice, "bill_creation", "2026-03-08T05:01:00Z")  # 00:01 EST on the 8th
    assert night["period"] == "2026-03-08"
    assert sorted(b["session_ids"] for b in night["bills"]) == sorted([[first], [second]])  # one bill per session
    bill = await practice.bill(night["bills"][0]["bill_id"])
    assert bill["responsibility"] == "insurance" and bill["client_owes_cents"] == 2500  # from the client's profile
    assert bill["issued_on"] == "2026-03-08" and bill["due_date"] == "2026-03-23"  # the practice's 15 days
    assert dt.datetime.fromisoformat(bill["share_scheduled_at"]) == dt.datetime(2026, 3, 8, 7, 1, tzinfo=dt.UTC)
    assert bill["shared"] is False

    after_dst = await run(practice, "bill_creation", "2026-03-09T04:01:00Z")  # 00:01 EDT on the 9th
    assert after_dst["period"] == "2026-03-09" and [b["session_ids"] for b in after_dst["bills"]] == [[sunday]]
    assert await practice.unbilled_ids() == []
    assert len((await practice.get("/v1/bills")).json()["items"]) == 3


async def test_monthly_bills_on_the_first_cover_last_month_including_the_leap_day(practice) -> None:
    await practice.put("/v1/settings", {"bill_creation": "monthly"})
    a, b = uid("client"), uid("client")
    await practice.client(a)
    await practice.client(b)
    feb_a = [uid("s"), uid("s")]
    await practice.session(feb_a[0], a, date_of_service="2028-02-01")
    await practice.session(feb_a[1], a, date_of_service="2028-02-29")
    feb_b, march = uid("s"), uid("s")
    await practice.session(feb_b, b, date_of_service="2028-02-29")
    await practice.session(march, b, date_of_service="2028-03-01")
    await eventually(lambda: _count(practice.unbilled_ids(), 4))

    leap_evening = await run(practice, "bill_creation", "2028-03-01T04:59:00Z")  # 23:59 on Feb 29 in New York
    assert leap_evening["period"] == "2028-02" and leap_evening["bills"] == []
    first = await run(practice, "bill_creation", "2028-03-01T05:00:00Z")  # midnight, March 1st
    assert first["period"] == "2028-03"
    assert sorted((x["client_id"], x["session_ids"]) for x in first["bills"]) == sorted([(a, feb_a), (b, [feb_b])])
    assert await practice.unbilled_ids() == [march]
    assert (await run(practice, "bill_creation", "2028-03-31T12:00:00Z"))["already_ran"] is True
    april = await run(practice, "bill_creation", "2028-04-01T04:30:00Z")  # 00:30 EDT, April 1st
    assert [x["session_ids"] for x in april["bills"]] == [[march]]


async def test_concurrent_runs_and_a_second_replica_bill_each_session_once(practice, test_settings) -> None:
    await practice.put("/v1/settings", {"bill_creation": "weekly"})
    ids = [uid("client") for _ in range(3)]
    for cid in ids:
        await practice.client(cid)
        await practice.session(uid("s"), cid, date_of_service="2026-12-30")
    await eventually(lambda: _count(practice.unbilled_ids(), 3))
    replica, replica_app = build(
        (await isolated_topics(test_settings)).model_copy(update={"billing_automation_interval_s": 0})
    )
    await replica.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=replica_app), base_url="http://r") as other:
            body = {"job": "bill_creation", "as_of": "2027-01-04T12:00:00Z"}  # Monday of 2027-W01
            answers = await asyncio.gather(
                practice.post("/v1/automation/run", body),
                other.post("/v1/automation/run", json=body, headers=practice.headers()),
                practice.post("/v1/automation/run", body),
            )
    finally:
        await replica.stop()
    runs = [r.json() for r in answers]
    assert sorted(r["already_ran"] for r in runs) == [False, True, True]
    assert sorted(b["client_id"] for r in runs for b in r["bills"]) == sorted(ids)
    assert len((await practice.get("/v1/bills")).json()["items"]) == 3


async def test_a_crashed_run_leaves_nothing_and_the_rerun_bills_everyone_once(practice, monkeypatch) -> None:
    await practice.put("/v1/settings", {"bill_creation": "monthly"})
    ids = [uid("client") for _ in range(3)]
    for cid in ids:
        await practice.client(cid)
        await practice.session(uid("s"), cid, date_of_service="2026-10-15")
    await eventually(lambda: _count(practice.unbilled_ids(), 3))
    real, calls = automation.bills.create_bill, []

    async def crash_on_second(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("replica killed mid-run")
        return await real(*args, **kw)

    monkeypatch.setattr(automation.bills, "create_bill", crash_on_second)
    with pytest.raises(RuntimeError):
        await practice.post("/v1/automation/run", {"job": "bill_creation", "as_of": "2026-11-01T12:00:00Z"})
    monkeypatch.setattr(automation.bills, "create_bill", real)
    assert len(await practice.unbilled_ids()) == 3  # the first client's bill went with the crashed transaction
    rerun = await run(practice, "bill_creation", "2026-11-01T12:00:00Z")
    assert rerun["already_ran"] is False and sorted(b["client_id"] for b in rerun["bills"]) == sorted(ids)
    assert len((await practice.get("/v1/bills")).json()["items"]) == 3


async def _paid_bill(practice: Practice, cid: str, session_id: str) -> dict[str, Any]:
    bill = await practice.billed(cid, [session_id])
    await practice.payment(cid, [(bill["id"], bill["client_owes_cents"])])
    return await eventually(lambda: _when_paid(practice, bill["id"]))


async def _when_paid(practice: Practice, bill_id: str) -> dict[str, Any] | None:
    bill = await practice.bill(bill_id)
    return bill if bill["status"] == "paid" else None


async def test_superbills_on_day_31_run_on_the_last_day_of_february_with_paid_sessions_only(practice) -> None:
    wants, not_asked = uid("client"), uid("client")
    await practice.put("/v1/settings", {**PRACTICE_INFO, "superbill_creation_day": 31})
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    paid, unpaid, later = uid("s"), uid("s"), uid("s")
    for cid in (wants, not_asked):
        await practice.client(cid)
    await practice.session(paid, wants, example="insurance-telehealth", date_of_service="2027-01-20")
    await practice.session(unpaid, wants, example="insurance-telehealth", date_of_service="2027-01-21")
    await practice.session(later, wants, example="insurance-telehealth", date_of_service="2027-02-03")
    other = uid("s")
    await practice.session(other, not_asked, example="insurance-telehealth", date_of_service="2027-01-20")
    await practice.put(f"/v1/clients/{wants}/billing-profile", {"automatic_superbills": True})
    await _paid_bill(practice, wants, paid)
    await _paid_bill(practice, not_asked, other)
    await practice.billed(wants, [unpaid])

    early = await run(practice, "superbill_creation", "2027-02-27T15:00:00Z")
    assert early["due"] is False and early["period"] == "2027-01"
    r = await run(practice, "superbill_creation", "2027-02-28T15:00:00Z")
    assert r["period"] == "2027-01" and [(s["client_id"], s["session_ids"]) for s in r["superbills"]] == [
        (wants, [paid])
    ]
    assert (await run(practice, "superbill_creation", "2027-02-28T20:00:00Z"))["already_ran"] is True
    await _paid_bill(practice, wants, later)
    march = await run(practice, "superbill_creation", "2027-03-31T15:00:00Z")  # the 31st itself in March
    assert [s["session_ids"] for s in march["superbills"]] == [[later]]  # never the January one again
    docs = (await practice.get(f"/v1/clients/{wants}/documents")).json()["items"]
    assert [d["kind"] for d in docs] == ["superbill", "superbill", "bill", "bill", "bill"]


async def test_a_split_session_goes_on_a_superbill_only_once_every_bill_of_its_group_is_paid(practice) -> None:
    """One parent paying their half does not pay the session: the superbill waits for the other."""
    cid, sid = uid("client"), uid("s")
    await practice.put("/v1/settings", {**PRACTICE_INFO, "superbill_creation_day": 1})
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    await practice.client(cid, minor=True, guardians=[MOTHER, FATHER])
    await practice.session(sid, cid, example="insurance-telehealth", date_of_service="2027-01-20")
    await practice.put(f"/v1/clients/{cid}/billing-profile", {"automatic_superbills": True})
    await eventually(lambda: _all_in(practice.unbilled_ids(cid), [sid]))
    r = await practice.post("/v1/bills", {"client_id": cid, "session_ids": [sid], "split": SPLIT})
    assert r.status_code == 201, r.text
    mother, father = r.json()["items"]
    await practice.payment(cid, [(mother["id"], mother["client_owes_cents"])])
    await eventually(lambda: _when_paid(practice, mother["id"]))
    assert (await practice.bill(father["id"]))["status"] == "open"
    february = await run(practice, "superbill_creation", "2027-02-01T15:00:00Z")
    assert february["period"] == "2027-01" and february["superbills"] == [], "half the group is still open"

    await practice.payment(cid, [(father["id"], father["client_owes_cents"])])
    await eventually(lambda: _when_paid(practice, father["id"]))
    march = await run(practice, "superbill_creation", "2027-03-01T15:00:00Z")
    assert [(s["client_id"], s["session_ids"]) for s in march["superbills"]] == [(cid, [sid])]
    superbill = (await practice.get(f"/v1/superbills/{march['superbills'][0]['superbill_id']}")).json()
    assert superbill["total_paid_cents"] == mother["total_cents"] + father["total_cents"]


async def test_settings_warn_when_bills_would_be_shared_before_autopay_and_tell_payments(practice) -> None:
    r = await practice.put("/v1/settings", {"bill_creation": "daily", "auto_share_bills": True,
                                            "auto_share_delay_hours": 0, "autopay_time": "01:00"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert [w["code"] for w in r.json()["warnings"]] == ["auto_share_before_autopay"]
    assert "at least 2 h" in r.json()["warnings"][0]["message"]
    assert [w["code"] for w in (await practice.get("/v1/settings")).json()["warnings"]] == ["auto_share_before_autopay"]
    r = await practice.put("/v1/settings", {"auto_share_delay_hours": 2, "warnings": []})  # a GET body round-trips
    assert r.status_code == 200 and r.json()["warnings"] == []
    r = await practice.put("/v1/settings", {"superbill_creation_day": 32})
    assert r.status_code == 422

    def told(events: list[dict[str, Any]]) -> bool:
        return any(e["event_type"] == "PracticeAutomationChanged" for e in events)

    events = [e for e in await practice.events(told) if e["event_type"] == "PracticeAutomationChanged"]
    assert events[0]["data"]["autopay_time"] == "01:00:00" and events[0]["data"]["timezone"] == "America/New_York"
