"""Automatic bill creation and auto-share, run on demand as they would have run at `as_of`."""

import datetime as dt
import uuid

import pytest

from shared import topics
from tests.conftest import eventually, example_event
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


async def _count(ids, n: int) -> bool:
    return len(await ids) == n


async def test_monthly_superbills_for_clients_who_ask_for_them(practice) -> None:
    wants, not_asked = uid("client"), uid("client")
    await practice.put("/v1/settings", {**PRACTICE_INFO, "superbill_creation_day": 5})
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    for cid in (wants, not_asked):
        await practice.client(cid)
        await practice.session(uid("s"), cid, example="insurance-telehealth", date_of_service="2026-10-20")
    await practice.put(f"/v1/clients/{wants}/billing-profile", {"automatic_superbills": True})
    await eventually(lambda: _count(practice.unbilled_ids(), 2))

    early = await practice.post("/v1/automation/run", {"job": "superbill_creation", "as_of": "2026-11-03T15:00:00Z"})
    assert early.json()["due"] is False
    r = await practice.post("/v1/automation/run", {"job": "superbill_creation", "as_of": "2026-11-05T15:00:00Z"})
    run = r.json()
    assert run["period"] == "2026-10" and [s["client_id"] for s in run["superbills"]] == [wants]
    again = await practice.post("/v1/automation/run", {"job": "superbill_creation", "as_of": "2026-11-06T15:00:00Z"})
    assert again.json()["already_ran"] is True
    docs = (await practice.get(f"/v1/clients/{wants}/documents")).json()["items"]
    assert [d["kind"] for d in docs] == ["superbill"]
