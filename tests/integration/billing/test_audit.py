"""Every write stages an AuditRecorded through billing's outbox (shared.audit): who (the token's
`sub`), what, on which resource; a refused write records nothing."""

from typing import Any

from shared import topics
from shared.auth import issue_token
from tests.conftest import eventually, example_event
from tests.integration.billing.conftest import Practice, _all_in
from tests.integration.billing.test_automation import _paid_bill, run, uid
from tests.integration.billing.test_superbills import PRACTICE_INFO


async def test_each_write_is_audited_once_and_refused_ones_not_at_all(practice: Practice) -> None:
    await practice.client("c-audit")
    await practice.session("s-audit", "c-audit")
    await eventually(lambda: _all_in(practice.unbilled_ids("c-audit"), ["s-audit"]))
    token = issue_token(practice.id, "staff", secret=practice.svc.settings.auth_secret, subject="alice@example.org")
    alice = {"Authorization": f"Bearer {token}"}
    r = await practice.http.post("/v1/bills", json={"client_id": "c-audit", "session_ids": ["s-audit"]}, headers=alice)
    assert r.status_code == 201, r.text
    bill_id = r.json()["id"]
    assert (await practice.http.post(f"/v1/bills/{bill_id}/cancel", json={}, headers=alice)).status_code == 200
    assert (await practice.http.post(f"/v1/bills/{bill_id}/cancel", json={}, headers=alice)).status_code == 409
    # A last write as a marker: once its record is out, the refused cancel's would have been too.
    r = await practice.http.put("/v1/settings", json={"footer_comment": "thanks"}, headers=practice.headers())
    assert r.status_code == 200, r.text

    def audits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["event_type"] == "AuditRecorded"]

    # Keyed by client (or practice): partitions differ, so compare in action order.
    got = audits(
        await practice.events(until=lambda es: any(a["action"] == "put_settings" for a in audits(es)), audit=True)
    )
    by_alice = {"actor": "alice@example.org", "role": "staff", "service": "billing", "ip": "127.0.0.1"}
    assert sorted(got, key=lambda a: a["action"]) == [
        by_alice | {"action": "cancel_bill", "resource": {"kind": "bill", "id": bill_id}, "client_id": "c-audit"},
        by_alice | {"action": "create_bill", "resource": {"kind": "bill", "id": bill_id}, "client_id": "c-audit"},
        {"actor": "staff", "role": "staff", "service": "billing", "ip": "127.0.0.1", "action": "put_settings",
         "resource": {"kind": "setting", "id": None}, "client_id": None},
    ]  # fmt: skip


async def test_bill_and_superbill_runs_and_scheduled_shares_are_automations_doing(practice: Practice) -> None:
    """Automation is an actor too: what the bill and superbill runs create and the scheduler
    shares is recorded as `automation`, in the transaction that does it; the staff request that
    set a run off (POST /v1/automation/run) is recorded as the staff's."""
    cid, early, sid = uid("client"), uid("s"), uid("s")
    await practice.put("/v1/settings", {**PRACTICE_INFO, "superbill_creation_day": 28, "auto_share_bills": True,
                                        "auto_share_delay_hours": 2, "bill_creation": "weekly"})  # fmt: skip
    await practice.send(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin")
    await practice.client(cid)
    await practice.session(early, cid, example="insurance-telehealth", date_of_service="2027-01-05")
    await eventually(lambda: _all_in(practice.unbilled_ids(cid), [early]))
    [weekly] = (await run(practice, "bill_creation", "2027-01-13T15:00:00Z"))["bills"]  # the weeks before Jan 11
    await practice.session(sid, cid, example="insurance-telehealth", date_of_service="2027-01-20")
    await practice.put(f"/v1/clients/{cid}/billing-profile", {"automatic_superbills": True})
    bill = await _paid_bill(practice, cid, sid)
    assert (await run(practice, "auto_share", bill["share_scheduled_at"]))["shared"] == 1
    [made] = (await run(practice, "superbill_creation", "2027-02-28T15:00:00Z"))["superbills"]

    def audits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["event_type"] == "AuditRecorded"]

    def done(events: list[dict[str, Any]]) -> bool:
        return {"share_bill", "create_superbill", "create_bill"} <= {a["action"] for a in audits(events)}

    got = [a for a in audits(await practice.events(until=done, audit=True)) if a["actor"] == "automation"]
    by_automation = {"actor": "automation", "role": "automation", "service": "billing", "client_id": cid, "ip": None}
    assert sorted(got, key=lambda a: a["action"]) == [
        by_automation | {"action": "create_bill", "resource": {"kind": "bill", "id": weekly["bill_id"]}},
        by_automation | {"action": "create_superbill", "resource": {"kind": "superbill", "id": made["superbill_id"]}},
        by_automation | {"action": "share_bill", "resource": {"kind": "bill", "id": bill["id"]}},
    ]
